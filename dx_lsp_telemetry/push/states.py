"""A day's push state: one meaning each, whoever reads it (status, report, flush, the editor).

The names are those of README.md's Day states table, which says the same as the sentences here:
they are the command line's (the extension words its own, with its commands' names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

#: journal states that are the day's state as they are; `sending` and `pending` are not
#: (a push in flight, or one waiting to retry, leaves the day to be pushed)
SETTLED = ("pushed", "outbox", "failed", "unconfirmed")

#: what `flush --resend` means for a day in that state (the user's word on it)
RESEND = "flush --resend {date} --tool {tool}"
MARK = "flush --mark-pushed {date} --tool {tool}"


def day_state(day: date, today: date, oldest: date, journal_state: str | None) -> str:
    """`open` today; a settled journal state as it is; `expired` before `oldest` (the first
    day of the backfill window), which is never pushed by itself; else `pending`."""
    if day == today:
        return "open"
    if journal_state in SETTLED:
        return journal_state
    return "expired" if day < oldest else "pending"


def _command(template: str, entry: Mapping[str, Any]) -> str:
    return "`dx-lsp-telemetry " + template.format(date=entry["date"], tool=entry["tool"]) + "`"


def advice(entry: Mapping[str, Any]) -> str | None:
    """What the user does about one day (a status or report entry, or a flush item with its
    state), in the command line's words; None where nothing is asked of them."""
    state = entry.get("state")
    if state == "failed":
        return (
            "it is tried again by itself once its record, the token or the settings change; "
            f"to send it now {_command(RESEND, entry)}, to accept the refusal "
            f"{_command(MARK, entry)}"
        )
    if state == "unconfirmed":
        return (
            "DX's answer was lost, so DX may have it: check DX, then "
            f"{_command(RESEND, entry)} or {_command(MARK, entry)}"
        )
    if state == "expired":
        return (
            "older than the backfill window (flush.backfillDays) and never pushed: it is not "
            f"pushed by itself; to push it anyway {_command(RESEND, entry)}, or leave it"
        )
    if state == "pending" and entry.get("retryAt"):
        return f"tried again by itself at {entry['retryAt']} (`dx-lsp-telemetry flush` tries now)"
    return None


def flush_lines(report: Mapping[str, Any]) -> list[str]:
    """A push cycle's outcome (`CycleReport.to_json`) for people: one line per day that did
    not go, with what to do."""
    lines: list[str] = []
    for state in ("failed", "pending", "unconfirmed", "expired"):
        for item in report.get(state, []):
            said = [text for text in (item.get("error"), advice({**item, "state": state})) if text]
            lines.append(f"{state} {item['date']} {item['tool']}: " + "; ".join(said))
    return lines


def expired_summary(entries: Iterable[Mapping[str, Any]]) -> str | None:
    """One line for every expired day of a status or report (they can be many)."""
    expired = [e for e in entries if e.get("state") == "expired"]
    if not expired:
        return None
    days = ", ".join(f"{e['date']} {e['tool']}" for e in expired)
    return (
        f"expired (older than the backfill window, never pushed, not pushed by themselves): "
        f"{days}; to push one anyway `dx-lsp-telemetry {RESEND.format(date='DATE', tool='TOOL')}`"
    )
