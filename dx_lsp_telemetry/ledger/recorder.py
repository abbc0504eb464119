"""Recording events: the dedupe check and the append, atomically across processes.

Events that arrive together are recorded together (group commit): one lock, one index
lookup, one write per ledger file, one index transaction; each still answered only once its
line is written.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import date, timezone
from typing import Any

from dx_lsp_telemetry.ledger.ledger import Appended, LedgerBusy, LedgerError, LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import IndexNeedsRepair, LedgerIndex
from dx_lsp_telemetry.record.events import UsageEvent
from dx_lsp_telemetry.settings.days import DayBoundary, day_of

log = logging.getLogger(__name__)

#: new ledger bytes a quick record may index first (what another process appended)
QUICK_BYTES = 64 << 10


def record_events(
    writer: LedgerWriter,
    index: LedgerIndex,
    events: Sequence[UsageEvent],
    boundary: DayBoundary,
    *,
    window: Iterable[date] = (),
) -> list[dict[str, Any]]:
    """Append `events` and index them; the answers of `dxTelemetry/recordUsage`."""
    answers, appended = append_events(writer, index, events, boundary, window=window)
    index_appended(index, appended)
    return answers


def append_events(
    writer: LedgerWriter,
    index: LedgerIndex,
    events: Sequence[UsageEvent],
    boundary: DayBoundary,
    *,
    window: Iterable[date] = (),
    written: Collection[str] = (),
) -> tuple[list[dict[str, Any]], list[Appended]]:
    """Append `events`, in order: their answers, on disk when this returns, and what was
    written (for `index_appended`, which may come after the answers are sent). An event
    whose id came earlier (in the ledger, or earlier in `events`) is a `duplicate`.

    `window`: the UTC ledger files an earlier version of an event may be in besides its own
    (those of the backfill window, `EventRules.window_files`): what other processes appended
    there is indexed first, so `duplicate` is exact. `written`: event ids this process wrote
    and has not indexed yet (then the caller has indexed what others wrote).
    """
    files = set(window) | {e.timestamp.astimezone(timezone.utc).date() for e in events}
    with writer.locked():
        ids = [e.event_id for e in events]
        try:
            if not written:
                index.refresh(sorted(files))
            known = index.contains(ids)
        except LedgerError:  # the index cannot be written: the ledger still can, maybe
            with index.unwritten(sorted(files)):
                known = index.contains(ids)
        known.update(i for i in ids if i in written)
        duplicates = []
        for event_id in ids:
            duplicates.append(event_id in known)
            known.add(event_id)
        appended = writer.append_events(events)
    answers = [
        {
            "recorded": True,
            "event_id": event.event_id,
            "date": day_of(event.timestamp, boundary).isoformat(),
            "tool": event.tool,
            "duplicate": duplicate,
        }
        for event, duplicate in zip(events, duplicates)
    ]
    return answers, appended


class QuickRecorder:
    """Records on the caller's thread (the event loop's) where that is quick: nothing else
    holds the append lock, little that others appended is left to index, nothing to repair.
    Its own lines are indexed a moment later, many at once (an index commit costs 0.1 ms).
    Else `record` answers None, having written nothing: the caller records on a thread."""

    def __init__(self, writer: LedgerWriter, index: LedgerIndex) -> None:
        self.writer = writer
        self.index = index
        self._pending: list[Appended] = []
        self._pending_ids: set[str] = set()
        self._pending_bytes: dict[date, int] = {}

    @property
    def pending_bytes(self) -> int:
        return sum(self._pending_bytes.values())

    def record(
        self, events: Sequence[UsageEvent], boundary: DayBoundary, window: Iterable[date]
    ) -> list[dict[str, Any]] | None:
        utc = {e.timestamp.astimezone(timezone.utc).date() for e in events}
        files = sorted(set(window) | utc)
        try:
            with self.writer.locked(wait=0):  # another writer at it: no waiting here
                ours = sum(self._pending_bytes.get(d, 0) for d in files)
                others = self.index.unindexed_bytes(files) - ours
                if others > QUICK_BYTES:
                    return None
                if others:
                    self.flush()  # then what others wrote is read, not what we did
                answers, appended = append_events(
                    self.writer,
                    self.index,
                    events,
                    boundary,
                    window=files,
                    written=self._pending_ids,
                )
        except (IndexNeedsRepair, LedgerBusy):
            return None
        for a in appended:
            self._pending.append(a)
            size = len(a.payload) + int(a.sealed)
            self._pending_bytes[a.file_date] = self._pending_bytes.get(a.file_date, 0) + size
        self._pending_ids.update(e.event_id for e in events)
        return answers

    def flush(self) -> None:
        """Index this process's own lines written since the last flush."""
        pending, self._pending = self._pending, []
        self._pending_ids, self._pending_bytes = set(), {}
        if pending:
            index_appended(self.index, pending)


def index_appended(index: LedgerIndex, appended: list[Appended]) -> None:
    try:
        index.add_appended(appended)
    except LedgerError as exc:  # on disk is what counts: the next refresh indexes them
        log.warning("recorded, but not indexed yet: %s", exc)


def record_event(
    writer: LedgerWriter,
    index: LedgerIndex,
    event: UsageEvent,
    boundary: DayBoundary,
    *,
    window: Iterable[date] = (),
) -> dict[str, Any]:
    """`record_events` of one event (the CLI's `record`)."""
    return record_events(writer, index, [event], boundary, window=window)[0]


def not_recorded(event: UsageEvent, boundary: DayBoundary) -> dict[str, Any]:
    """The answer while `dxTelemetry.enabled` is off."""
    return {
        "recorded": False,
        "event_id": event.event_id,
        "date": day_of(event.timestamp, boundary).isoformat(),
        "tool": event.tool,
        "duplicate": False,
    }
