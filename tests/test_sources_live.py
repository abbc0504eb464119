"""Sources, live: a running sidecar notices a log appended to and counts it, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.days import format_ts, utc_now
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
