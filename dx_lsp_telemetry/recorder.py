"""Recording one event: the dedupe check and the append, atomically across processes."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from dx_lsp_telemetry.days import DayBoundary, day_of
from dx_lsp_telemetry.events import UsageEvent
from dx_lsp_telemetry.ledger import LedgerWriter
from dx_lsp_telemetry.ledger_index import LedgerIndex


def record_event(
    writer: LedgerWriter, index: LedgerIndex, event: UsageEvent, boundary: DayBoundary
) -> dict[str, Any]:
    """Append `event`; the answer of `dxTelemetry/recordUsage`. On disk when this returns."""
    index.track(index.tracked | {event.timestamp.astimezone(timezone.utc).date()})
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
