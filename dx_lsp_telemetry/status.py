"""The `dxTelemetry/status` object, from the ledger view, the journal and the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.config import blocking_problems, destination_of, push_target
from dx_lsp_telemetry.daybook import late_totals, read_day
from dx_lsp_telemetry.days import shown_days
from dx_lsp_telemetry.journal import Journal, JournalEntry
from dx_lsp_telemetry.ledger import LedgerError
from dx_lsp_telemetry.ledger_index import LedgerIndex
from dx_lsp_telemetry.problems import Namer, editor_name
from dx_lsp_telemetry.settings import Settings
from dx_lsp_telemetry.states import day_state
from dx_lsp_telemetry.summary import Totals

#: how a status problem begins when the ledger could not be read at all (the CLI exits 1)
LEDGER_UNREADABLE = "the ledger cannot be read: "


@dataclass(frozen=True)
class StatusInputs:
    data_dir: Path
    leader: bool
    settings: Settings
    #: malformed settings, an unusable data folder, a pause after DX refused the token...
    extra_problems: list[str]
    token: str | None
    now: datetime
    #: what the machine's managed configuration sets (`managed.py`): `config.managed`
    managed: Mapping[str, Any] = field(default_factory=dict)
    #: how the front end showing the status names settings (the CLI: its own variables)
    namer: Namer = editor_name
    #: a remote host's reader: no push, so no push problems and no push states
    reader: bool = False


def build_status(inputs: StatusInputs, index: LedgerIndex, journal: Journal) -> dict[str, Any]:
    settings = inputs.settings
    # beyond a short window too, so a day that left it shows as `expired` where users look
    days = shown_days(inputs.now, settings.day_boundary, settings.backfill_days)
    today = days[0]
    if inputs.reader:
        days = [today]
    problems = list(inputs.extra_problems)
    if settings.enabled and not inputs.reader:
        problems += blocking_problems(settings, inputs.token, inputs.namer)
    journal.load()
    entries: list[dict[str, Any]] = []
    try:
        try:
            index.refresh()
            entries = day_entries(index, journal, settings, inputs.token, days, today)
        except LedgerError as exc:  # e.g. a full disk: read as if indexed, writing nothing
            problems.append(f"the ledger index cannot be updated: {exc}")
            with index.unwritten():
                entries = day_entries(index, journal, settings, inputs.token, days, today)
    except LedgerError as exc:
        problems.append(f"{LEDGER_UNREADABLE}{exc}")
    today_tools = {
        e["tool"]: e["totals"]
        for e in entries
        if e["date"] == today.isoformat() and e["totals"]["events"]
    }
    config: dict[str, Any] = {
        "ok": not problems,
        "destination": "forward" if inputs.reader else destination_of(settings),
        "problems": problems,
    }
    if settings.machine_suffix and not inputs.reader:
        config["machineSuffix"] = settings.machine_suffix  # what DX's tool names end in
    if inputs.managed:  # only on a machine with a managed configuration
        config["managed"] = dict(inputs.managed)
    return {
        "version": __version__,
        "dataDir": str(inputs.data_dir),
        "leader": inputs.leader,
        "config": config,
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
    split_late: bool = True,
) -> list[dict[str, Any]]:
    """One entry per (date, tool) of `days`, in their order, with its push state.

    With `split_late`, a pushed day's `totals` are what was pushed and `late` the rest;
    without, `totals` hold every distinct event (the report).
    """
    target = push_target(settings, token)
    oldest = today - timedelta(days=settings.backfill_days)
    result: list[dict[str, Any]] = []
    for day in days:
        for tool, sums in read_day(index, settings, day).tools.items():
            pushed = journal.get((target.destination, target.email, day.isoformat(), tool))
            entry = _day_entry(day, tool, today, oldest, sums.totals, pushed)
            if split_late and pushed is not None and entry["state"] in _SENT and pushed.cover:
                _split_late(entry, index, settings, day, tool, sums.totals, pushed)
            result.append(entry)
    return result


#: states whose record left: their `totals` are what was sent, later events are `late`
_SENT = ("pushed", "outbox", "unconfirmed")


def _day_entry(
    day: date,
    tool: str,
    today: date,
    oldest: date,
    totals: Totals,
    pushed: JournalEntry | None,
) -> dict[str, Any]:
    state = day_state(day, today, oldest, pushed.state if pushed else None)
    entry: dict[str, Any] = {"date": day.isoformat(), "tool": tool, "state": state}
    if pushed is not None and state in ("pushed", "outbox"):
        entry["pushedAt"] = pushed.at
    elif pushed is not None and pushed.error:  # why it failed, or its last try (pending, expired)
        entry["error"] = pushed.error
    if pushed is not None and state == "pending" and pushed.retry_at:
        entry["retryAt"] = pushed.retry_at  # a transient failure: DX was not reached
    entry["totals"] = totals.to_status()
    return entry


def _split_late(
    entry: dict[str, Any],
    index: LedgerIndex,
    settings: Settings,
    day: date,
    tool: str,
    totals: Totals,
    pushed: JournalEntry,
) -> None:
    """A sent day: `totals` as sent (what DX holds), `late` what was written after it."""
    late = late_totals(index, settings, day, pushed.cover).get(tool)
    if pushed.totals is not None:
        entry["totals"] = pushed.totals
    else:  # a journal from before totals were kept: what the record included
        included = Totals()
        included.merge(totals)
        if late is not None:
            included.merge(late, -1)
        entry["totals"] = included.to_status()
    if late is not None and late.events:
        entry["late"] = late.to_status()
