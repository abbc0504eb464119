"""The `dxTelemetry/status` object, from the ledger view, the journal and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.config import blocking_problems, destination_of, push_target
from dx_lsp_telemetry.daybook import day_tools, split_by_cover, window_index
from dx_lsp_telemetry.journal import Journal, JournalEntry
from dx_lsp_telemetry.ledger import LedgerEntry
from dx_lsp_telemetry.ledger_index import LedgerIndex
from dx_lsp_telemetry.settings import Settings
from dx_lsp_telemetry.summary import Totals, totals_by_tool


@dataclass(frozen=True)
class StatusInputs:
    data_dir: Path
    leader: bool
    settings: Settings
    #: malformed settings, an unusable data folder, a pause after DX refused the token...
    extra_problems: list[str]
    token: str | None
    now: datetime


def build_status(inputs: StatusInputs, index: LedgerIndex, journal: Journal) -> dict[str, Any]:
    settings = inputs.settings
    days = window_index(index, settings, inputs.now)
    journal.load()
    today = days[0]
    problems = list(inputs.extra_problems)
    if settings.enabled:
        problems += blocking_problems(settings, inputs.token)
    entries = day_entries(index, journal, settings, inputs.token, days, today, split_late=True)
    today_tools = {
        e["tool"]: e["totals"]
        for e in entries
        if e["date"] == today.isoformat() and e["totals"]["events"]
    }
    return {
        "version": __version__,
        "dataDir": str(inputs.data_dir),
        "leader": inputs.leader,
        "config": {
            "ok": not problems,
            "destination": destination_of(settings),
            "problems": problems,
        },
        "today": {"date": today.isoformat(), "tools": today_tools},
        "days": entries,
    }


def day_entries(
    index: LedgerIndex,
    journal: Journal,
    settings: Settings,
    token: str | None,
    days: list[date],
    today: date,
    *,
    split_late: bool,
) -> list[dict[str, Any]]:
    """One entry per (date, tool) of `days`, in their order, with its push state.

    With `split_late`, a pushed day's `totals` are what was pushed and `late` the rest;
    without, `totals` hold every distinct event (the report).
    """
    target = push_target(settings, token)
    result: list[dict[str, Any]] = []
    for day in days:
        for tool, entries in day_tools(index, settings, day).items():
            pushed = journal.get((target.destination, target.email, day.isoformat(), tool))
            result.append(
                _day_entry(index, settings, day, tool, today, entries, pushed, split_late)
            )
    return result


def _day_entry(
    index: LedgerIndex,
    settings: Settings,
    day: date,
    tool: str,
    today: date,
    entries: list[LedgerEntry],
    pushed: JournalEntry | None,
    split_late: bool,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"date": day.isoformat(), "tool": tool, "state": "pending"}
    cover: dict[str, int] | None = None
    sent: dict[str, Any] | None = None
    if day == today:
        entry["state"] = "open"
    elif pushed is not None and pushed.state != "sending":
        entry["state"] = pushed.state
        if pushed.state in ("pushed", "outbox"):
            entry["pushedAt"] = pushed.at
        if pushed.error and pushed.state in ("failed", "unconfirmed", "pending"):
            entry["error"] = pushed.error
        if pushed.state == "pending" and pushed.retry_at:
            entry["retryAt"] = pushed.retry_at
        if split_late and pushed.state in ("pushed", "outbox", "unconfirmed") and pushed.cover:
            cover = pushed.cover
            sent = pushed.totals  # what DX holds, even if a bigger version came later
    # the sums are remembered until the day's events change: a new event costs its day only
    boundary = settings.day_boundary
    if cover is None:
        totals, late = index.memo(
            boundary, day, ("totals", tool), lambda: (_totals(entries, tool), None)
        )
    else:
        split = cover
        totals, late = index.memo(
            boundary,
            day,
            ("split", tool, tuple(sorted(split.items()))),
            lambda: _split_totals(entries, split, tool),
        )
    entry["totals"] = sent if sent is not None else dict(totals)
    if late is not None:
        entry["late"] = dict(late)
    return entry


def _split_totals(
    entries: list[LedgerEntry], cover: dict[str, int], tool: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(totals of what a record computed at `cover` included, of what came later or None)."""
    counted, late = split_by_cover(entries, cover)
    return _totals(counted, tool), (_totals(late, tool) if late else None)


def _totals(entries: list[LedgerEntry], tool: str) -> dict[str, Any]:
    return totals_by_tool(entries).get(tool, Totals()).to_status()
