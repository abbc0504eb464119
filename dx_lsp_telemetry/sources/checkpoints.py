"""Per-source reading state: for each file, how far it was read and what the reader must remember.

Saved atomically after the events it covers are in the ledger. A crash in between means a
re-read, which the records' keys make harmless; a checkpoint is never ahead of the ledger.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.sources.base import FileState

log = logging.getLogger(__name__)
VERSION = 1


class Checkpoints:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, FileState] = {}
        #: what `dx-lsp-telemetry sources` shows: counts, the last scan, the last error
        self.summary: dict[str, Any] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning(
                "%s is unreadable (%s): the source's files are read again from the start; "
                "record keys keep every token counted once",
                self.path,
                exc,
            )
            return
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return
        files = data.get("files")
        if isinstance(files, dict):
            self.files = {str(k): v for k, v in files.items() if isinstance(v, dict)}
        summary = data.get("summary")
        if isinstance(summary, dict):
            self.summary = summary

    def state(self, path: Path) -> FileState:
        return dict(self.files.get(str(path), {}))

    def update(self, path: Path, state: FileState) -> None:
        self.files[str(path)] = state
        self.dirty = True

    def forget_missing(self, present: set[str]) -> None:
        """Drop the state of files that are gone (a deleted transcript never comes back)."""
        gone = [k for k in self.files if k not in present]
        for key in gone:
            del self.files[key]
        self.dirty = self.dirty or bool(gone)

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = {"version": VERSION, "summary": self.summary, "files": self.files}
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
