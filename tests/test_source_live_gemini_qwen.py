"""Gemini CLI and Qwen Code, live: a running sidecar with both sources on (and Claude Code's)
counts what is in their chats at start and what they append while it runs, once, under their DX
tool names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.settings.days import format_ts, utc_now
from tests.harness import BASE_SETTINGS, date_ago, days_ago, sidecar, until_async

SECRET = "the secret prompt of Project Nightingale"
GEMINI_SESSION = "5b1f0c2e-8d3a-4b7e-9f10-2a3b4c5d6e7f"
QWEN_SESSION = "3d6f2a1b-7c8e-4f90-a1b2-c3d4e5f60718"


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def gemini_message(message_id: str, ts: str, inp: int, out: int, cached: int) -> str:
    tokens = {"input": inp, "output": out, "cached": cached, "thoughts": 0, "tool": 0}
    return line(
        {
            "id": message_id,
            "timestamp": ts,
            "type": "gemini",
            "content": SECRET,
            "thoughts": [],
            "tokens": {**tokens, "total": inp + out},
            "model": "gemini-2.5-pro",
        }
    )


def qwen_call(uuid: str, ts: str, prompt: int, completion: int, cached: int) -> str:
    event = {
        "event.name": "qwen-code.api_response",
        "event.timestamp": ts,
        "model": "qwen3-coder-plus",
        "input_token_count": prompt,
        "output_token_count": completion,
        "cached_content_token_count": cached,
        "thoughts_token_count": 0,
        "total_token_count": prompt + completion,
        "response_text": SECRET,
    }
    return line(
        {
            "uuid": uuid,
            "parentUuid": None,
            "sessionId": QWEN_SESSION,
            "timestamp": ts,
            "type": "system",
            "cwd": "/home/dev/nightingale",
            "version": "0.24.4",
            "subtype": "ui_telemetry",
            "systemPayload": {"uiEvent": event},
        }
    )


async def test_appended_gemini_and_qwen_usage_shows_in_status_once(
    home: Path, tmp_path: Path
) -> None:
    gemini_home, qwen_home, claude_home = (
        tmp_path / "gemini",
        tmp_path / "qwen",
        tmp_path / "claude",
    )
    (claude_home / "projects").mkdir(parents=True)
    chat = gemini_home / "tmp" / "nightingale" / "chats" / "session-2026-01-01T10-00-5b1f0c2e.jsonl"
    chat.parent.mkdir(parents=True)
    header = {"sessionId": GEMINI_SESSION, "projectHash": "ab12", "startTime": days_ago(2)}
    chat.write_text(line(header) + gemini_message("g1", days_ago(2), 1000, 50, 400))
    qwen = qwen_home / "projects" / "-home-dev-nightingale" / "chats" / f"{QWEN_SESSION}.jsonl"
    qwen.parent.mkdir(parents=True)
    qwen.write_text(qwen_call("q1", days_ago(2), 700, 30, 200))
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "sources": {
            # Claude Code's `projects/**/*.jsonl` also fits Qwen Code's chats: a change there is
            # still Qwen Code's to read (it is not under Claude Code's watched folder)
            "claudeCode": {"enabled": True, "path": str(claude_home)},
            "geminiCli": {"enabled": True, "path": str(gemini_home)},
            "qwenCode": {"enabled": True, "path": str(qwen_home), "tool": "qwen"},
        },
    }
    async with sidecar(home, settings) as client:

        async def day(tool: str) -> dict[str, Any] | None:
            status = await client.status()
            return next(
                (d for d in status["days"] if d["tool"] == tool and d["date"] == date_ago(2)),
                None,
            )

        async def both_started() -> bool:
            return bool(await day("gemini-cli") and await day("qwen"))

        await until_async(both_started, what="the initial scan of both")
        gemini_day, qwen_day = await day("gemini-cli"), await day("qwen")
        assert gemini_day and gemini_day["totals"]["input_tokens"] == 600
        assert qwen_day and qwen_day["totals"]["cache_read_tokens"] == 200
        now = format_ts(utc_now())
        with chat.open("a") as f:  # the same message re-appended, then a new one
            f.write(gemini_message("g1", days_ago(2), 1000, 50, 400))
            f.write(gemini_message("g2", now, 300, 20, 100))
        with qwen.open("a") as f:
            f.write(qwen_call("q2", now, 90, 9, 0))

        async def grown() -> bool:
            today = (await client.status())["today"]["tools"]
            return (
                today.get("gemini-cli", {}).get("input_tokens") == 200
                and today.get("qwen", {}).get("output_tokens") == 9
            )

        await until_async(grown, timeout=10, what="the appended lines in status")
        gemini_day = await day("gemini-cli")
        assert gemini_day and gemini_day["totals"]["events"] == 1
        assert gemini_day["totals"]["output_tokens"] == 50
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())  # index included
    for secret in (SECRET, "nightingale", GEMINI_SESSION, QWEN_SESSION):
        assert secret.encode() not in stored, secret
