"""Which (date, tool) records a day has, read from the ledger view."""

from __future__ import annotations

from datetime import date, datetime

from dx_lsp_telemetry.days import DayBoundary, utc_dates_overlapping, window_days
from dx_lsp_telemetry.ledger import LedgerEntry
from dx_lsp_telemetry.ledger_index import LedgerIndex
from dx_lsp_telemetry.settings import Settings


def window_index(index: LedgerIndex, settings: Settings, now: datetime) -> list[date]:
    """Point `index` at the files of today and the backfill window; return those days."""
    days = window_days(now, settings.day_boundary, settings.backfill_days)
    index.track(utc_dates_overlapping(days[-1], days[0], settings.day_boundary))
    index.refresh()
    return days


def day_tools(index: LedgerIndex, settings: Settings, day: date) -> dict[str, list[LedgerEntry]]:
    """The day's events per tool; an inactive day (markers, no usage) has the `tool` setting.

    The lists are shared with the index's memo: read them, do not change them.
    """
    boundary = settings.day_boundary
    by_tool = dict(index.memo(boundary, day, "tools", lambda: _by_tool(index, boundary, day)))
    if (
        not by_tool
        and settings.report_inactive_days
        and settings.tool
        and day in index.marker_days(settings.day_boundary)
    ):
        by_tool[settings.tool] = []
    return dict(sorted(by_tool.items()))


def _by_tool(index: LedgerIndex, boundary: DayBoundary, day: date) -> dict[str, list[LedgerEntry]]:
    by_tool: dict[str, list[LedgerEntry]] = {}
    for entry in index.of_day(boundary, day):
        by_tool.setdefault(entry.event.tool, []).append(entry)
    return by_tool


def cover_of(index: LedgerIndex, settings: Settings, day: date) -> dict[str, int]:
    """How far each ledger file of `day` has been read: what a record computed now includes."""
    offsets = index.offsets()
    return {
        d.isoformat(): offsets.get(d, 0)
        for d in utc_dates_overlapping(day, day, settings.day_boundary)
    }


def split_by_cover(
    entries: list[LedgerEntry], cover: dict[str, int]
) -> tuple[list[LedgerEntry], list[LedgerEntry]]:
    """(included in a record computed at `cover`, written after it: a pushed day's `late`)."""
    included: list[LedgerEntry] = []
    late: list[LedgerEntry] = []
    for e in entries:
        (late if e.offset >= cover.get(e.file_date.isoformat(), 0) else included).append(e)
    return included, late
