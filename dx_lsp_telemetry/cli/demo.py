"""`dx-lsp-telemetry demo`: a real sidecar on a temporary home, driven over LSP like an editor."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from dx_lsp_telemetry.cli.render import status_text
from dx_lsp_telemetry.lsp.server import raw_json_converter
from dx_lsp_telemetry.settings.days import format_ts, is_complete

DEMO_SETTINGS = {
    "email": "developer@example.com",
    "tool": "demo-assistant",
    "flush": {"enabled": False, "delaySeconds": 0},
}


def run_demo() -> int:
    home = Path(tempfile.mkdtemp(prefix="dx-telemetry-demo-"))
    try:
        return asyncio.run(_demo(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _demo(home: Path) -> int:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DX_TELEMETRY_", "DX_DATA_CLOUD"))
    }
    env["DX_TELEMETRY_HOME"] = str(home)
    client = LanguageClient("dx-telemetry-demo", "1", converter_factory=raw_json_converter)
    client.feature("dxTelemetry/statusChanged")(lambda ls, params: None)
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda ls, params: None)

    _say("dx-lsp-telemetry demo: an editor session against a real sidecar, on a temporary home")
    _say(f"  home: {home}")
    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "dx_lsp_telemetry", "serve", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            process_id=os.getpid(),
            initialization_options=DEMO_SETTINGS,
        )
    )
    client.initialized(types.InitializedParams())
    _say(f"  sidecar started; initialize answered after {time.perf_counter() - started:.2f} s")
    _say(
        f"  settings: email={DEMO_SETTINGS['email']} tool={DEMO_SETTINGS['tool']}, "
        "no instanceUrl, so pushes go to the local outbox"
    )

    now = datetime.now(timezone.utc)
    past = now - timedelta(days=1)
    if not is_complete(past.date(), now, "utc"):  # just after midnight: yesterday is not final yet
        past -= timedelta(days=1)
    events: list[dict[str, Any]] = [
        {
            "event_id": "demo-1",
            "timestamp": format_ts(past.replace(hour=9, minute=15)),
            "model": "claude-sonnet-4",
            "input_tokens": 1200,
            "output_tokens": 340,
            "cache_read_tokens": 5000,
            "spend_cents": 1.37,
            "metrics": {"suggestions_accepted": 3},
        },
        {
            "event_id": "demo-2",
            "timestamp": format_ts(past.replace(hour=14, minute=2)),
            "model": "gpt-5",
            "input_tokens": 800,
            "output_tokens": 2100,
            "cost_usd": 0.0425,
        },
        # the same event again, now with its final output count: it replaces, never adds
        {
            "event_id": "demo-2",
            "timestamp": format_ts(past.replace(hour=14, minute=2)),
            "model": "gpt-5",
            "input_tokens": 800,
            "output_tokens": 2450,
            "cost_usd": 0.0462,
        },
        {
            "event_id": "demo-3",
            "model": "claude-sonnet-4",
            "input_tokens": 420,
            "output_tokens": 96,
        },
    ]
    for event in events:
        result = await client.protocol.send_request_async("dxTelemetry/recordUsage", event)
        note = " (duplicate: replaces the earlier version)" if result["duplicate"] else ""
        _say(f"  recordUsage {event['event_id']} -> {result['date']} {result['tool']}{note}")

    status = await client.protocol.send_request_async("dxTelemetry/status", {})
    _say("\nstatus:")
    _say("  " + status_text(status).replace("\n", "\n  "))

    flushed = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="dxTelemetry.flushNow", arguments=[])
    )
    _say(f"\nflushNow -> {json.dumps(flushed)}")
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]

    records = sorted((home / "outbox").glob("*.json"))
    if not records:
        _say("no record reached the outbox: something is wrong")
        return 1
    for path in records:
        _say(f"\noutbox/{path.name} (exactly what would be POSTed to aiToolMetrics.push):")
        _say(path.read_text(encoding="utf-8").rstrip())
    _say("\nToday's events stay in the ledger until the day is over; then they are pushed once.")
    return 0
