"""An in-memory, deduplicated view of some ledger files, kept current by tailing them.

The winner for an `event_id` is the version with the larger token total; on a tie, the one
recorded later. Only this view decides what counts; nothing keeps running counters.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from dx_lsp_telemetry.days import DayBoundary, day_of
from dx_lsp_telemetry.ledger import LedgerEntry, SessionMarker, ledger_path, read_from

log = logging.getLogger(__name__)


def beats(new: LedgerEntry, old: LedgerEntry) -> bool:
    a, b = new.event.token_total, old.event.token_total
    return a > b or (a == b and new.order > old.order)


class LedgerIndex:
    def __init__(self, ledger_dir: Path) -> None:
        self.ledger_dir = ledger_dir
        self._offsets: dict[date, int] = {}
        self._winners: dict[str, LedgerEntry] = {}
        self._markers: list[SessionMarker] = []
        self._warned: set[tuple[date, int]] = set()
        self.generation = 0
        self._groups_key: tuple[int, DayBoundary] | None = None
        self._groups: dict[date, list[LedgerEntry]] = {}

    @property
    def tracked(self) -> set[date]:
        return set(self._offsets)

    def track(self, utc_dates: Iterable[date]) -> None:
        """Follow exactly these UTC files; forgetting one rebuilds the view (once a day)."""
        wanted = set(utc_dates)
        if wanted == self.tracked:
            return
        if self.tracked - wanted:
            self._offsets, self._winners, self._markers = {}, {}, []
            self.generation += 1
        for d in sorted(wanted - self.tracked):
            self._offsets[d] = 0

    def refresh(self) -> bool:
        """Read what was appended since the last call; True if anything new counted."""
        changed = False
        for file_date in sorted(self._offsets):
            path = ledger_path(self.ledger_dir, file_date)
            offset = self._offsets[file_date]
            try:
                size = os.stat(path).st_size
            except (FileNotFoundError, NotADirectoryError):  # a data folder that is a file
                continue
            if size == offset:
                continue
            if size < offset:  # replaced behind our back: start the view over
                self._offsets = dict.fromkeys(self._offsets, 0)
                self._winners, self._markers = {}, []
                self.generation += 1
                self.refresh()
                return True
            first_read = offset == 0
            result = read_from(path, file_date, offset)
            self._offsets[file_date] = result.next_offset
            for problem in result.problems:
                log.warning("%s", problem)
            if first_read and result.trailing_bytes and (file_date, size) not in self._warned:
                self._warned.add((file_date, size))
                log.warning(
                    "%s: ignoring an incomplete last line of %d bytes (a write cut short?)",
                    path.name,
                    result.trailing_bytes,
                )
            for entry in result.entries:
                old = self._winners.get(entry.event.event_id)
                if old is None or beats(entry, old):
                    self._winners[entry.event.event_id] = entry
                    changed = True
            if result.markers:
                self._markers.extend(result.markers)
                changed = True
        if changed:
            self.generation += 1
        return changed

    def get(self, event_id: str) -> LedgerEntry | None:
        return self._winners.get(event_id)

    def __len__(self) -> int:
        return len(self._winners)

    def by_day(self, boundary: DayBoundary) -> dict[date, list[LedgerEntry]]:
        key = (self.generation, boundary)
        if self._groups_key != key:
            groups: dict[date, list[LedgerEntry]] = {}
            for entry in self._winners.values():
                groups.setdefault(day_of(entry.event.timestamp, boundary), []).append(entry)
            self._groups, self._groups_key = groups, key
        return self._groups

    def marker_days(self, boundary: DayBoundary) -> set[date]:
        return {day_of(m.timestamp, boundary) for m in self._markers}

    def offsets(self) -> dict[date, int]:
        return dict(self._offsets)
