"""An in-memory, deduplicated view of some ledger files, kept current by tailing them.

The winner for an `event_id` is the version with the larger token total; on a tie, the one
recorded later. Only this view decides what counts; nothing keeps running counters.

The winners are also kept grouped by day (for one day boundary at a time), updated as lines
arrive, with a version per day: what is computed from a day's events (its totals in the status)
is remembered until that day changes, so a new line costs the work of its own day, not of the
whole window.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Iterable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from dx_lsp_telemetry.days import DayBoundary, day_of
from dx_lsp_telemetry.ledger import LedgerEntry, SessionMarker, ledger_path, read_from

log = logging.getLogger(__name__)
T = TypeVar("T")
#: remembered per-day results (days x tools x covers of the window); beyond this, start over
MEMO_LIMIT = 4096


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
        #: the winners by day for `_groups_boundary` (None: to be built), kept up to date
        self._groups_boundary: DayBoundary | None = None
        self._groups: dict[date, dict[str, LedgerEntry]] = {}
        #: per day: the `_version` of its last change (never reused, so a memo is never stale)
        self._day_versions: dict[date, int] = {}
        self._version = 0
        self._by_day_key: tuple[int, DayBoundary] | None = None
        self._by_day: dict[date, list[LedgerEntry]] = {}
        self._memo: dict[Hashable, tuple[int, Any]] = {}

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
            self._forget_groups()
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
                self._forget_groups()
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
                    if self._groups_boundary is not None:
                        self._regroup(old, entry, self._groups_boundary)
            if result.markers:
                self._markers.extend(result.markers)
                changed = True
                if self._groups_boundary is not None:
                    for marker in result.markers:  # a marker can make a day inactive, not absent
                        self._touch(day_of(marker.timestamp, self._groups_boundary))
        if changed:
            self.generation += 1
        return changed

    def get(self, event_id: str) -> LedgerEntry | None:
        return self._winners.get(event_id)

    def __len__(self) -> int:
        return len(self._winners)

    def by_day(self, boundary: DayBoundary) -> dict[date, list[LedgerEntry]]:
        self._ensure_groups(boundary)
        key = (self.generation, boundary)
        if self._by_day_key != key:
            self._by_day = {d: list(g.values()) for d, g in self._groups.items() if g}
            self._by_day_key = key
        return self._by_day

    def of_day(self, boundary: DayBoundary, day: date) -> list[LedgerEntry]:
        """The winners of one day (as `by_day(boundary).get(day, [])`, without the others)."""
        self._ensure_groups(boundary)
        return list(self._groups.get(day, {}).values())

    def day_version(self, boundary: DayBoundary, day: date) -> int:
        """Changes whenever the day's events or markers change (0: never had any)."""
        self._ensure_groups(boundary)
        return self._day_versions.get(day, 0)

    def memo(self, boundary: DayBoundary, day: date, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, a function of the day's events only, remembered until the day changes."""
        version = self.day_version(boundary, day)
        slot = (boundary, day, key)
        hit = self._memo.get(slot)
        if hit is not None and hit[0] == version:
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[slot] = (version, value)
        return value

    def _ensure_groups(self, boundary: DayBoundary) -> None:
        if self._groups_boundary == boundary:
            return
        self._forget_groups()
        self._version += 1
        for event_id, entry in self._winners.items():
            day = day_of(entry.event.timestamp, boundary)
            self._groups.setdefault(day, {})[event_id] = entry
            self._day_versions[day] = self._version
        for marker in self._markers:
            self._day_versions[day_of(marker.timestamp, boundary)] = self._version
        self._groups_boundary = boundary

    def _forget_groups(self) -> None:
        self._groups_boundary = None
        self._groups, self._day_versions, self._memo = {}, {}, {}
        self._by_day_key = None

    def _regroup(self, old: LedgerEntry | None, new: LedgerEntry, boundary: DayBoundary) -> None:
        event_id = new.event.event_id
        day = day_of(new.event.timestamp, boundary)
        if old is not None:
            old_day = day_of(old.event.timestamp, boundary)
            if old_day != day:
                self._groups.get(old_day, {}).pop(event_id, None)
                self._touch(old_day)
        self._groups.setdefault(day, {})[event_id] = new  # a same-day version keeps its place
        self._touch(day)

    def _touch(self, day: date) -> None:
        self._version += 1
        self._day_versions[day] = self._version

    def marker_days(self, boundary: DayBoundary) -> set[date]:
        return {day_of(m.timestamp, boundary) for m in self._markers}

    def offsets(self) -> dict[date, int]:
        return dict(self._offsets)
