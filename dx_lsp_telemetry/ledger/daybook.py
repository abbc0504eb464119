"""A zone day as the index holds it: its records per tool, and what they were computed from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dx_lsp_telemetry.ledger.ledger_index import SLOT_SECONDS, LedgerIndex
from dx_lsp_telemetry.record.summary import ToolDay, Totals
from dx_lsp_telemetry.settings.days import (
    DayBoundary,
    day_end,
    day_start,
    utc_dates_overlapping,
    window_days,
)
from dx_lsp_telemetry.settings.settings import Settings


@dataclass(frozen=True)
class Day:
    day: date
    #: per tool; an inactive day (a sidecar ran, nothing was used) has the `tool` setting
    tools: dict[str, ToolDay]
    #: a sidecar ran on this day (it writes a session marker a day)
    has_markers: bool
    #: how far each of the day's UTC ledger files was indexed when `tools` was read
    cover: dict[str, int]


def slots(day: date, boundary: DayBoundary) -> tuple[int, int]:
    """The index's quarter hours [first, end) of a zone day."""
    start = int(day_start(day, boundary).timestamp())
    end = int(day_end(day, boundary).timestamp())
    return start // SLOT_SECONDS, end // SLOT_SECONDS


def refreshed_window(index: LedgerIndex, settings: Settings, now: datetime) -> list[date]:
    """Bring the index up to date with the ledger; today and the backfill window, newest
    first."""
    index.refresh()
    return window_days(now, settings.day_boundary, settings.backfill_days)


def read_day(index: LedgerIndex, settings: Settings, day: date) -> Day:
    boundary = settings.day_boundary
    first, end = slots(day, boundary)
    indexed = index.day(first, end, utc_dates_overlapping(day, day, boundary))
    tools = dict(sorted(indexed.tools.items()))
    if not tools and indexed.has_markers and settings.report_inactive_days and settings.tool:
        tools[settings.tool] = ToolDay()
    cover = {d.isoformat(): off for d, off in indexed.cover.items()}
    return Day(day, tools, indexed.has_markers, cover)


def late_totals(
    index: LedgerIndex, settings: Settings, day: date, cover: dict[str, int]
) -> dict[str, Totals]:
    """Per tool, the day's events written after a record computed at `cover` was pushed."""
    first, end = slots(day, settings.day_boundary)
    return index.late(first, end, {date.fromisoformat(d): off for d, off in cover.items()})
