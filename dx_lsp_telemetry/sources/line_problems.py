"""The problems of one read of a log, each with its line number, told in one bounded sentence."""

from __future__ import annotations

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
