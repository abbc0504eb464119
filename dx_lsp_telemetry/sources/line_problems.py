"""The problems of one read of a log, each with its line number, told in one bounded sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.sources.base import FileState
from dx_lsp_telemetry.sources.tail import appended_lines

SHOWN = 3


class LineProblems:
    def __init__(self, unit: str = "line") -> None:
        #: what a number counts: a file's `line`, a JSON array's `message`
        self.unit = unit
        self.count = 0
        self._shown: list[str] = []

    def add(self, number: int, what: str) -> None:
        self.count += 1
        if len(self._shown) < SHOWN:
            self._shown.append(f"{self.unit} {number}: {what}")

    def text(self) -> str | None:
        """e.g. `skipped 2 unreadable lines (line 3: not JSON; line 9: …)`, or None."""
        if not self.count:
            return None
        more = f"; {self.count - SHOWN} more" if self.count > SHOWN else ""
        noun = self.unit if self.count == 1 else f"{self.unit}s"
        return f"skipped {self.count} unreadable {noun} ({'; '.join(self._shown)}{more})"


def json_objects(
    path: Path, state: FileState, problems: LineProblems
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of the lines appended to `path` since `state`, each with its line
    number (kept in `state["lines"]`, so numbers go on across reads); blank lines skipped,
    others that are not JSON objects told to `problems`."""
    number: int | None = None
    try:
        for _offset, line in appended_lines(path, state):
            if number is None:  # after the reader reset the state of a replaced file
                number = int(state.get("lines", 0))
            number += 1
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (ValueError, RecursionError):
                problems.add(number, "not JSON")
                continue
            if not isinstance(data, dict):
                problems.add(number, "not a JSON object")
                continue
            yield number, data
    finally:
        if number is not None:
            state["lines"] = number
