"""A JSON file its tool rewrites whole (Cline's tasks and sessions, Gemini's and Copilot Chat's
older snapshots): read in one consistent pass, or asked for again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.sources.base import FileState, ReadResult
from dx_lsp_telemetry.sources.tail import identity

#: the parsed document and the (identity, size, mtime) it was read at
Loaded = tuple[Any, list[int]]


class WholeJson:
    def __init__(self, cut: str = "a write cut short?") -> None:
        self._cut = f"not valid JSON ({cut}); read again when it changes"
        #: path -> the signature a parse failed at: named only when it fails there twice
        self._failed: dict[str, list[int]] = {}

    def read(
        self, path: Path, state: FileState, known: Any, *, missing_retries: bool = True
    ) -> ReadResult | Loaded:
        """The document, or the ReadResult to give: unchanged since `known` (the signature the
        state holds), written to while read, missing between a rewrite's renames, or not JSON
        (a rewrite in progress: a problem only when the same bytes fail again)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if not missing_retries:
                raise
            return ReadResult([], state, retry=True)
        try:
            before = os.fstat(fd)
            signature = [*identity(before), before.st_size, before.st_mtime_ns]
            if signature == known:
                return ReadResult([], state)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if [*identity(after), after.st_size, after.st_mtime_ns] != signature:
            return ReadResult([], state, retry=True)  # written to while read
        key = str(path)
        try:
            data = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):  # empty or cut short: a rewrite in progress
            again = self._failed.get(key) == signature
            self._failed[key] = signature
            return ReadResult([], state, retry=True, problem=self._cut if again else None)
        self._failed.pop(key, None)
        return data, signature
