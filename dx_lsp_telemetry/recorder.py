"""Recording events: the dedupe check and the append, atomically across processes.

Events that arrive together are recorded together (group commit): one lock, one index
lookup, one write per ledger file, one index transaction; each still answered only once its
line is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, timezone
from typing import Any

from dx_lsp_telemetry.days import DayBoundary, day_of
from dx_lsp_telemetry.events import UsageEvent
from dx_lsp_telemetry.ledger import Appended, LedgerBusy, LedgerError, LedgerWriter
from dx_lsp_telemetry.ledger_index import IndexNeedsRepair, LedgerIndex

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
) -> tuple[list[dict[str, Any]], list[Appended]]:
    """Append `events`, in order: their answers, on disk when this returns, and what was
    written (for `index_appended`, which may come after the answers are sent). An event
    whose id came earlier (in the ledger, or earlier in `events`) is a `duplicate`.

    `window`: the UTC ledger files an earlier version of an event may be in besides its own
    (those of the backfill window, `EventRules.window_files`): what other processes appended
    there is indexed first, so `duplicate` is exact.
    """
    files = set(window) | {e.timestamp.astimezone(timezone.utc).date() for e in events}
    with writer.locked():
        try:
            index.refresh(sorted(files))
            known = index.contains(e.event_id for e in events)
        except LedgerError:  # the index cannot be written: the ledger still can, maybe
            with index.unwritten(sorted(files)):
                known = index.contains(e.event_id for e in events)
        duplicates = []
        for event in events:
            duplicates.append(event.event_id in known)
            known.add(event.event_id)
        appended = writer.append_events(events)
    answers = [
        {
            "recorded": True,
            "event_id": event.event_id,
            "date": day_of(event.timestamp, boundary).isoformat(),
            "tool": event.tool,
            "duplicate": duplicate,
        }
        for event, duplicate in zip(events, duplicates)  # noqa: B905 (same length; 3.9)
    ]
    return answers, appended


def record_quickly(
    writer: LedgerWriter,
    index: LedgerIndex,
    events: Sequence[UsageEvent],
    boundary: DayBoundary,
    *,
    window: Iterable[date] = (),
) -> list[dict[str, Any]] | None:
    """`record_events`, where it is quick (little for the index to read first, nothing to
    repair): on the caller's thread, without a hand-off. None (nothing written) otherwise."""
    files = sorted(set(window) | {e.timestamp.astimezone(timezone.utc).date() for e in events})
    try:
        with writer.locked(wait=0):  # another writer at it: no waiting on this thread
            if index.unindexed_bytes(files) > QUICK_BYTES:
                return None
            answers, appended = append_events(writer, index, events, boundary, window=files)
    except (IndexNeedsRepair, LedgerBusy):
        return None
    index_appended(index, appended)
    return answers


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
