"""Sources, live: a running sidecar notices a log appended to and counts it, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.settings.days import format_ts, utc_now
from tests.harness import BASE_SETTINGS, date_ago, days_ago, sidecar, until_async


def claude_line(message_id: str, request_id: str, timestamp: str, **usage: int) -> str:
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "sessionId": "11111111-2222-4333-8444-555555555555",
        "version": "2.0.14",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "a secret prompt answer"}],
            "usage": {"input_tokens": 0, "output_tokens": 0, **usage},
        },
        "requestId": request_id,
        "type": "assistant",
        "timestamp": timestamp,
    }
    return json.dumps(line, separators=(",", ":")) + "\n"


async def test_a_line_appended_to_a_claude_transcript_shows_in_status(
    home: Path, tmp_path: Path
) -> None:
    claude = tmp_path / "claude"
    transcript = claude / "projects" / "-home-dev-secret-project" / "s1.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(claude_line("msg_1", "req_1", days_ago(2), input_tokens=10))
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "sources": {"claudeCode": {"enabled": True, "path": str(claude)}},
    }
    async with sidecar(home, settings) as client:

        async def claude_day() -> dict[str, Any] | None:
            status = await client.status()
            return next(
                (
                    d
                    for d in status["days"]
                    if d["tool"] == "claude-code" and d["date"] == date_ago(2)
                ),
                None,
            )

        day = await until_async(claude_day, what="the initial scan")
        assert day["totals"]["input_tokens"] == 10
        with transcript.open("a") as f:  # the same response streamed again, then a new one
            f.write(claude_line("msg_1", "req_1", days_ago(2), input_tokens=10, output_tokens=5))
            f.write(claude_line("msg_2", "req_2", format_ts(utc_now()), input_tokens=7))

        async def grown() -> bool:
            status = await client.status()
            today = status["today"]["tools"].get("claude-code", {})
            day = await claude_day()
            return bool(
                today.get("input_tokens") == 7 and day and day["totals"]["output_tokens"] == 5
            )

        await until_async(grown, timeout=10, what="the appended lines in status")
        day = await claude_day()
        assert (
            day is not None and day["totals"]["events"] == 1 and day["totals"]["input_tokens"] == 10
        )
    ledger = "".join(p.read_text() for p in (home / "ledger").glob("*.jsonl"))
    assert "secret" not in ledger and "s1" not in ledger and "msg_1" not in ledger


async def test_a_goose_call_committed_to_its_wal_shows_in_status(
    home: Path, tmp_path: Path
) -> None:
    """A running total, live: Goose's commit touches only `sessions.db-wal`; the watcher's
    hint for it reads the database, and the growth shows once."""
    from tests.running_tools import GooseDb

    def now_text() -> str:
        return utc_now().strftime("%Y-%m-%d %H:%M:%S")

    db = GooseDb(tmp_path / "goose" / "sessions" / "sessions.db")
    db.session("20260101_1", now_text())
    db.call("20260101_1", now_text(), inp=1000, out=100, cr=600)
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "sources": {"goose": {"enabled": True, "path": str(db.path.parent)}},
    }
    try:
        async with sidecar(home, settings) as client:

            async def goose_today(want: int) -> bool:
                status = await client.status()
                tools = status["today"]["tools"].get("goose", {})
                return bool(tools.get("output_tokens") == want)

            await until_async(lambda: goose_today(100), what="the initial scan")
            db.call("20260101_1", now_text(), inp=500, out=50, cr=400)
            await until_async(lambda: goose_today(150), timeout=10, what="the commit")
            status = await client.status()
            assert status["today"]["tools"]["goose"]["input_tokens"] == 500
            assert status["today"]["tools"]["goose"]["cache_read_tokens"] == 1000
    finally:
        db.close()
