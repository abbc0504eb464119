"""The Copilot sources, live: a running sidecar notices a chat session's new result patch and a
Copilot CLI session's new usage record, and counts each once."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.copilot_chat_logs import initial, request, result, session, set_, turn, write
from tests.harness import BASE_SETTINGS, date_ago, sidecar, until_async

SID = "2f6c1a52-7f1e-4a43-9b8e-0a1b2c3d4e5f"
CLI_FIXTURE = Path(__file__).parent / "fixtures" / "copilot-cli-1.0.102" / "session-state"


def now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000) - 60_000


async def test_new_patches_and_usage_records_show_in_status(home: Path, tmp_path: Path) -> None:
    user = tmp_path / "Code" / "User"
    log = user / "workspaceStorage" / "w1" / "chatSessions" / f"{SID}.jsonl"
    write(log, initial(session(SID, now_ms())))
    write(log, turn(0, request("request_1", now_ms()), result(100, 10), now_ms()))
    copilot = tmp_path / "dot-copilot"
    shutil.copytree(CLI_FIXTURE, copilot / "session-state")
    events = next((copilot / "session-state").glob("*/events.jsonl"))
    # the real session, moved to yesterday (status shows recent days)
    text = events.read_text(encoding="utf-8").replace("2026-12-02T", date_ago(1) + "T")
    lines = text.splitlines(keepends=True)
    events.write_text("".join(lines[:8]), encoding="utf-8")  # the first run only, for now
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "sources": {
            "copilotChat": {"enabled": True, "path": str(user)},
            "copilotCli": {"enabled": True, "path": str(copilot)},
        },
    }
    async with sidecar(home, settings) as client:

        async def totals(tool: str) -> dict[str, int]:
            status = await client.status()
            found: dict[str, int] = {"events": 0, "input_tokens": 0, "output_tokens": 0}
            for day in status["days"]:
                if day["tool"] == tool:
                    for name in found:
                        found[name] += day["totals"][name]
            return found

        async def both_read() -> bool:
            chat, cli = await totals("copilot-chat"), await totals("copilot-cli")
            return chat["events"] == 1 and cli["events"] == 1

        await until_async(both_read, what="the initial scans")
        write(log, turn(1, request("request_2", now_ms()), None, now_ms()))
        write(log, set_(["requests", 1, "result"], result(7, 3)))
        with events.open("a", encoding="utf-8") as f:
            f.write("".join(lines[8:]))

        async def grown() -> bool:
            chat, cli = await totals("copilot-chat"), await totals("copilot-cli")
            return chat["events"] == 2 and cli["events"] == 2

        await until_async(grown, timeout=10, what="the appended lines in status")
        assert await totals("copilot-chat") == {
            "events": 2,
            "input_tokens": 107,
            "output_tokens": 13,
        }
        # the CLI's input without its cache reads: (1200 - 200) + (1202 - 201)
        assert await totals("copilot-cli") == {
            "events": 2,
            "input_tokens": 2001,
            "output_tokens": 101,
        }
    ledger = "".join(p.read_text() for p in (home / "ledger").glob("*.jsonl"))
    for secret in ("secret-payroll", SID, "request_1", "Say hello", "chatcmpl"):
        assert secret not in ledger
    assert json.loads(ledger.splitlines()[0])  # the ledger is there and readable
