"""Recording one event: the dedupe check and the append, atomically across processes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timezone
from typing import Any

from dx_lsp_telemetry.days import DayBoundary, day_of
from dx_lsp_telemetry.events import UsageEvent
from dx_lsp_telemetry.ledger import LedgerWriter
from dx_lsp_telemetry.ledger_index import LedgerIndex


def record_event(
    writer: LedgerWriter,
    index: LedgerIndex,
    event: UsageEvent,
    boundary: DayBoundary,
    *,
    window: Iterable[date] = (),
) -> dict[str, Any]:
    """Append `event`; the answer of `dxTelemetry/recordUsage`. On disk when this returns.

    `window`: the other UTC ledger files an earlier version of the event may be in (those of
    the backfill window, `EventRules.window_files`), so `duplicate` sees it there too.
    """
    index.track(index.tracked | set(window) | {event.timestamp.astimezone(timezone.utc).date()})
    with writer.locked():
        index.refresh()  # other windows' appends, so `duplicate` is exact
        duplicate = index.get(event.event_id) is not None
        writer.append_events([event])
        index.refresh()
    return {
        "recorded": True,
        "event_id": event.event_id,
        "date": day_of(event.timestamp, boundary).isoformat(),
        "tool": event.tool,
        "duplicate": duplicate,
    }


def not_recorded(event: UsageEvent, boundary: DayBoundary) -> dict[str, Any]:
    """The answer while `dxTelemetry.enabled` is off."""
    return {
        "recorded": False,
        "event_id": event.event_id,
        "date": day_of(event.timestamp, boundary).isoformat(),
        "tool": event.tool,
        "duplicate": False,
    }
