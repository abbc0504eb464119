"""Shared by the source tests: Claude Code and Codex logs written in the tools' real format
(compact JSON lines, as the tools write them), the real ingestion into a data home, the ledger's
per-day totals read back, and the peer ccusage 20.0.24 run on the same files.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.record.summary import Totals
from dx_lsp_telemetry.settings.settings import parse_settings
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.ingest import Ingestor
from dx_lsp_telemetry.sources.runner import make_ingestor
from tests.ledger_oracle import totals_by_day, winners

ROOT = Path(__file__).resolve().parent.parent
CCUSAGE = Path(
    os.environ.get("CCUSAGE")
    or ROOT / "tests/peers/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage"
)
SONNET = "claude-sonnet-4-20250514"

# -- time --------------------------------------------------------------------------------------


def day_start(days_ago: int) -> datetime:
    """00:00 UTC, `days_ago` days before today."""
    today = datetime.now(timezone.utc).date() - timedelta(days=days_ago)
    return datetime(today.year, today.month, today.day, tzinfo=timezone.utc)


def iso(ts: datetime) -> str:
    """As both tools write timestamps (JavaScript's toISOString: milliseconds, `Z`)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def compact(obj: Any) -> str:
    """One log line: compact JSON, as the tools write it (ccusage ignores `"usage": {`)."""
    return json.dumps(obj, separators=(",", ":"))


def write_lines(path: Path, lines: Iterable[dict[str, Any]], *, mode: str = "a") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as f:
        f.write("".join(compact(line) + "\n" for line in lines))


# -- Claude Code -------------------------------------------------------------------------------


def claude_usage(
    inp: int = 0,
    out: int = 0,
    cw: int = 0,
    cr: int = 0,
    *,
    split: Any = "same",
) -> dict[str, Any]:
    """`message.usage` as the Anthropic API gives it; `split` is the `cache_creation` object
    ("same": the 5-minute bucket holds all the cache writes; None: no object)."""
    usage: dict[str, Any] = {
        "input_tokens": inp,
        "cache_creation_input_tokens": cw,
        "cache_read_input_tokens": cr,
    }
    if split == "same":
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": cw, "ephemeral_1h_input_tokens": 0}
    elif split is not None:
        usage["cache_creation"] = split
    usage["output_tokens"] = out
    usage["service_tier"] = "standard"
    return usage


def claude_assistant(
    ts: datetime | str,
    session: str,
    message_id: str | None,
    request_id: str | None,
    usage: dict[str, Any],
    *,
    sidechain: bool = False,
    model: str = SONNET,
    cost_usd: float | None = None,
    cwd: str = "/home/dev/proj",
    text: str = "ok",
) -> dict[str, Any]:
    """An assistant line of a Claude Code transcript (`~/.claude/projects/<project>/<s>.jsonl`)."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    if message_id is None:
        del message["id"]
    line: dict[str, Any] = {
        "parentUuid": "5f0c3a52-7f1e-4a43-9b8e-0a1b2c3d4e5f",
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.0.14",
        "gitBranch": "main",
        "message": message,
        "requestId": request_id,
        "type": "assistant",
        "uuid": "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a",
        "timestamp": ts if isinstance(ts, str) else iso(ts),
    }
    if request_id is None:
        del line["requestId"]
    if cost_usd is not None:
        line["costUSD"] = cost_usd
    return line


def claude_user(
    ts: datetime, session: str, prompt: str, cwd: str = "/home/dev/proj"
) -> dict[str, Any]:
    return {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.0.14",
        "gitBranch": "main",
        "type": "user",
        "message": {"role": "user", "content": prompt},
        "uuid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "timestamp": iso(ts),
    }


# -- Codex -------------------------------------------------------------------------------------


def codex_usage(inp: int, cached: int, out: int, reasoning: int = 0) -> dict[str, int]:
    """A `TokenUsage` of Codex: input includes cached input, output includes reasoning."""
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out,
    }


def plus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a[k] + b[k] for k in a}


def codex_meta(
    ts: datetime,
    session: str,
    *,
    forked_from: str | None = None,
    spawned_by: str | None = None,
    cwd: str = "/home/dev/proj",
) -> dict[str, Any]:
    """The first line of a rollout; a fork names its parent, a spawned subagent its thread."""
    payload: dict[str, Any] = {
        "id": session,
        "timestamp": iso(ts),
        "cwd": cwd,
        "originator": "codex_cli_rs",
        "cli_version": "0.46.0",
        "instructions": None,
    }
    if forked_from is not None:
        payload["forked_from_id"] = forked_from
    payload["source"] = (
        {"subagent": {"thread_spawn": {"parent_thread_id": spawned_by, "depth": 1}}}
        if spawned_by
        else "cli"
    )
    return {"timestamp": iso(ts), "type": "session_meta", "payload": payload}


def codex_turn(ts: datetime, model: str, cwd: str = "/home/dev/proj") -> dict[str, Any]:
    return {
        "timestamp": iso(ts),
        "type": "turn_context",
        "payload": {
            "cwd": cwd,
            "approval_policy": "on-request",
            "sandbox_policy": {"mode": "workspace-write"},
            "model": model,
            "effort": "medium",
            "summary": "auto",
        },
    }


def codex_tokens(
    ts: datetime | str,
    total: dict[str, int] | None,
    last: dict[str, int] | None,
    *,
    null_info: bool = False,
) -> dict[str, Any]:
    """A `token_count` event; `info` null is a rate-limit refresh without usage."""
    info: dict[str, Any] | None = None
    if not null_info:
        info = {"model_context_window": 272000}
        if total is not None:
            info["total_token_usage"] = total
        if last is not None:
            info["last_token_usage"] = last
    return {
        "timestamp": ts if isinstance(ts, str) else iso(ts),
        "type": "event_msg",
        "payload": {
            "type": "token_count",
            "info": info,
            "rate_limits": {"primary": {"used_percent": 3.0, "window_minutes": 300}},
        },
    }


def codex_message(ts: datetime, role: str, text: str) -> dict[str, Any]:
    return {
        "timestamp": iso(ts),
        "type": "response_item",
        "payload": {
            "type": "message",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        },
    }


def rollout_path(home: Path, start: datetime, session: str, *, archived: bool = False) -> Path:
    name = f"rollout-{start.strftime('%Y-%m-%dT%H-%M-%S')}-{session}.jsonl"
    if archived:
        return home / "archived_sessions" / name
    return home / "sessions" / start.strftime("%Y/%m/%d") / name


# -- our side ----------------------------------------------------------------------------------


def ingestor(
    data_home: Path,
    source: Source,
    path: Path | str = "",
    *,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    since: date | None = None,
) -> Ingestor:
    """The real ingestor of `source`, as the sidecar and `scan` make it."""
    paths = DataPaths(data_home)
    paths.ensure()
    parsed = parse_settings(dict(settings or {}), env={})
    return make_ingestor(
        paths, source, parsed.settings, dict(env or {}), path=str(path), since=since
    )


@dataclass(frozen=True)
class Day:
    """One day's totals of one tool, as the ledger counts them (each distinct event once)."""

    events: int
    input: int
    output: int
    cache_write: int
    cache_read: int
    spend_cents: Decimal
    estimated_cents: Decimal | None

    @property
    def tokens(self) -> tuple[int, int, int, int]:
        return (self.input, self.output, self.cache_write, self.cache_read)


def _day(t: Totals) -> Day:
    return Day(
        t.events,
        t.input_tokens,
        t.output_tokens,
        t.cache_write_tokens,
        t.cache_read_tokens,
        t.spend_cents,
        t.metrics.get("spend_estimated_cents"),
    )


def ledger_days(data_home: Path, tool: str) -> dict[str, Day]:
    """Per UTC day, the totals of `tool` in the ledger (the larger version wins)."""
    days = totals_by_day(data_home / "ledger")
    return {day: _day(t) for (day, t_tool), t in sorted(days.items()) if t_tool == tool}


def ledger_tokens(data_home: Path, tool: str) -> dict[str, tuple[int, int, int, int]]:
    return {day: d.tokens for day, d in ledger_days(data_home, tool).items()}


def ledger_total(data_home: Path, tool: str) -> Day:
    """All days of `tool` together."""
    total = Totals()
    for event in winners(data_home / "ledger"):
        if event.tool == tool:
            total.add(event)
    return _day(total)


def ledger_models(data_home: Path, tool: str) -> list[str | None]:
    events = sorted(
        (e for e in winners(data_home / "ledger") if e.tool == tool), key=lambda e: e.timestamp
    )
    return [e.model for e in events]


def ledger_bytes(data_home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data_home / "ledger").glob("*.jsonl"))}


def all_file_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` (names and contents), to prove a secret is nowhere on disk."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- the peer ----------------------------------------------------------------------------------


def ccusage_daily(tool: str, logs: Path, work: Path) -> dict[str, dict[str, Any]]:
    """`ccusage <tool> daily --json -O -z UTC` on `logs` (CLAUDE_CONFIG_DIR or CODEX_HOME), with
    an isolated home and working directory; per date, ccusage's row."""
    home = work / "ccusage-home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TZ": "UTC",
        "NO_COLOR": "1",
        "CLAUDE_CONFIG_DIR" if tool == "claude" else "CODEX_HOME": str(logs),
    }
    done = subprocess.run(
        [str(CCUSAGE), tool, "daily", "--json", "-O", "-z", "UTC"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"ccusage failed ({done.returncode}): {done.stderr}"
    return {row["date"]: row for row in json.loads(done.stdout)["daily"]}


def ccusage_tokens(tool: str, logs: Path, work: Path) -> dict[str, tuple[int, int, int, int]]:
    """Per date, ccusage's (inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens)."""
    return {
        day: (
            row["inputTokens"],
            row["outputTokens"],
            row["cacheCreationTokens"],
            row["cacheReadTokens"],
        )
        for day, row in ccusage_daily(tool, logs, work).items()
    }


#: per (date, tool): events, input, output, cache write, cache read, spend (cents)
Tally = tuple[int, int, int, int, int, float]


def ledger_tallies(data: DataPaths) -> dict[tuple[str, str], Tally]:
    """Every distinct event of the ledger, summed per UTC day and tool."""
    return {
        key: (
            t.events,
            t.input_tokens,
            t.output_tokens,
            t.cache_write_tokens,
            t.cache_read_tokens,
            float(t.spend_cents),
        )
        for key, t in totals_by_day(data.ledger_dir).items()
    }
