"""Plain-text views of status and report for the terminal."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dx_lsp_telemetry.days import SHOWN_DAYS
from dx_lsp_telemetry.states import advice, expired_summary

BAR_WIDTH = 30


def tokens_of(totals: dict[str, Any]) -> int:
    return int(
        totals["input_tokens"]
        + totals["output_tokens"]
        + totals["cache_write_tokens"]
        + totals["cache_read_tokens"]
    )


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def money(cents: float) -> str:
    dollars = (Decimal(repr(cents)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"${dollars:,.2f}"


def status_text(status: dict[str, Any], where: str = "") -> str:
    """`where`: the destination's address (the instance URL, the outbox folder)."""
    config = status["config"]
    lines = [f"dx-lsp-telemetry {status['version']}  data: {status['dataDir']}"]
    lines.append(
        f"destination: {config['destination']}"
        + (f" ({where})" if where else "")
        + ("" if config["ok"] else "  (needs attention)")
    )
    lines += [f"  ! {p}" for p in config["problems"]]
    lines += _managed_lines(config.get("managed") or {})
    if config.get("machineSuffix"):
        suffix = config["machineSuffix"]
        lines.append(
            f"records of this machine are pushed as <tool>@{suffix} (dxTelemetry.machineSuffix)"
        )
    forward = status.get("forward")
    if forward is not None:
        lines.append(_forward_line(forward))
    otlp = status.get("otlp")
    if otlp is not None and otlp["state"] != "off":
        where = f" on 127.0.0.1:{otlp['port']}" if otlp.get("port") else ""
        lines.append(f"OTLP receiver: {otlp['state']}{where}")
    today = status["today"]
    lines.append(f"today {today['date']}:")
    if not today["tools"]:
        lines.append("  no AI usage recorded yet")
    for tool, totals in sorted(today["tools"].items()):
        lines.append(
            f"  {tool:<24} {plural(totals['events'], 'event'):>13} "
            f"{plural(tokens_of(totals), 'token'):>21} {money(totals['spend_cents']):>10}"
        )
    lines.append("days:")
    if not status["days"]:
        lines.append(f"  nothing recorded in the backfill window or the last {SHOWN_DAYS} days")
    for day in status["days"]:
        lines.append("  " + _day_line(day))
    return "\n".join(lines + _footnotes(status["days"]))


def _footnotes(days: list[dict[str, Any]]) -> list[str]:
    """What to do about the days that wait for the user: each failed or unconfirmed one, and
    the expired ones in a line (a long history can hold many)."""
    notes = [
        f"{d['date']} {d['tool']} is {d['state']}: {advice(d)}"
        for d in days
        if d["state"] in ("failed", "unconfirmed")
    ]
    summary = expired_summary(days)
    return notes + ([summary] if summary else [])


def _managed_lines(managed: dict[str, Any]) -> list[str]:
    """Which settings the machine's administrator set, from where; users cannot change them."""
    values: dict[str, dict[str, Any]] = managed.get("values") or {}
    if not values:
        return []
    overridden = set(managed.get("overrides") or [])
    lines = ["managed settings (set for this machine; your own settings cannot change them):"]
    for key, entry in values.items():
        note = "  (overrides your setting)" if key in overridden else ""
        value = json.dumps(entry["value"], ensure_ascii=False)
        lines.append(f"  {key} = {value}  from {entry['from']}{note}")
    return lines


def _forward_line(forward: dict[str, Any]) -> str:
    """A reader's forwarding to DX Telemetry on the developer's own machine."""
    state = forward["state"]
    if state == "standby":
        return "remote reader: standing by (this host's own DX Telemetry pushes its usage)"
    if state == "follower":
        return "remote reader: another window's reader forwards this host's usage"
    text = f"remote reader: {forward['delivered']} events forwarded to your own machine"
    if forward.get("lastAt"):
        text += f" (last at {forward['lastAt']})"
    text += f", {forward['pending']} waiting"
    return text


def _day_line(day: dict[str, Any]) -> str:
    totals = day["totals"]
    text = (
        f"{day['date']}  {day['tool']:<20} {day['state']:<11} "
        f"{plural(tokens_of(totals), 'token'):>21} {money(totals['spend_cents']):>10}"
    )
    if day.get("pushedAt"):
        text += f"  at {day['pushedAt']}"
    if day.get("retryAt"):
        text += f"  retry at {day['retryAt']}"
    if day.get("late"):
        text += f"  (+{plural(tokens_of(day['late']), 'token')} arrived late, not pushed)"
    if day.get("error"):
        text += f"\n      {day['error']}"
    return text


def report_text(report: dict[str, Any]) -> str:
    rows = report["days"]
    if not rows:
        return "No usage recorded in this period."
    peak = max(tokens_of(r["totals"]) for r in rows) or 1
    lines = [f"{'date':<10}  {'tool':<20} {'tokens':>14} {'spend':>10}  {'state':<11} usage"]
    for r in rows:
        total = tokens_of(r["totals"])
        bar = "█" * round(BAR_WIDTH * total / peak) if total else "·"
        lines.append(
            f"{r['date']:<10}  {r['tool']:<20} {total:>14,} {money(r['totals']['spend_cents']):>10}"
            f"  {r['state']:<11} {bar}"
        )
    return "\n".join(lines + _footnotes(rows))
