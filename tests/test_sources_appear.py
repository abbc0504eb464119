"""A tool's folder made after the sidecar started (the tool installed, or first run, later) is
watched as soon as it appears: the event is in status long before the periodic scan (60 s)
could have run again. A real sidecar over stdio, its HOME a fresh folder; and the watcher
alone in the mode where missing folders are looked for instead (macOS, Windows)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.days import format_ts, utc_now
from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.settings import parse_settings
from dx_lsp_telemetry.sources.watcher import (
    AWAIT_POLL_SECONDS,
    SCAN_INTERVAL_SECONDS,
    SourceWatcher,
)
from tests.harness import BASE_SETTINGS, Sidecar, sidecar, sidecar_env, until, until_async
from tests.source_logs import ledger_total
from tests.test_source_live_gemini_qwen import GEMINI_SESSION, gemini_message, line

#: what a watched folder's hint costs at most before the event is in status (0.2 s debounce)
WATCHED = 10.0


def first_scan_done(data: Path, label: str) -> float | None:
    """When (monotonic) the source's first scan was seen done: its checkpoint says so."""
    try:
        summary = json.loads((data / "sources" / f"{label}.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return None
    return time.monotonic() if "lastScan" in summary else None


def write_chat(gemini: Path, inp: int) -> None:
    """What Gemini CLI writes at its first chat: `tmp/<project>/chats/session-*.jsonl`."""
    chat = gemini / "tmp" / "proj-hash" / "chats" / "session-2026-01-01T10-00-5b1f0c2e.jsonl"
    chat.parent.mkdir(parents=True, exist_ok=True)
    header = {"sessionId": GEMINI_SESSION, "projectHash": "ab12", "startTime": format_ts(utc_now())}
    chat.write_text(line(header) + gemini_message("g1", format_ts(utc_now()), inp, 5, 0))


async def today_input(client: Sidecar, label: str) -> int:
    status = await client.status()
    return int(status["today"]["tools"].get(label, {}).get("input_tokens", 0))


def logged(client: Sidecar, text: str) -> bool:
    return any(text in entry for entry in client.stderr_lines)


@pytest.mark.parametrize("steps", ["all at once", "the home folder first"])
async def test_a_tool_folder_made_after_the_sidecar_started_is_read_at_once(
    home: Path, tmp_path: Path, steps: str
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    env = sidecar_env(home, HOME=str(user))
    env.pop("GEMINI_CLI_HOME", None)
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False},
        "sources": {"geminiCli": {"enabled": True}},  # its default place: ~/.gemini
    }
    gemini = user / ".gemini"
    async with sidecar(home, settings, env=env) as client:
        scanned = await until(lambda: first_scan_done(home, "gemini-cli"), what="the first scan")
        assert logged(client, f"waiting for {gemini / 'tmp'} (watching {user})")
        if steps == "the home folder first":  # as installing it and running it later do
            gemini.mkdir()
            (gemini / "settings.json").write_text("{}")
            await until(
                lambda: logged(client, f"waiting for {gemini / 'tmp'} (watching {gemini})"),
                what="the watch moved to ~/.gemini",
            )
        write_chat(gemini, 1234)
        # the next scan could not run before `scanned` + 60 s: only the watch can bring it
        budget = min(WATCHED, scanned + SCAN_INTERVAL_SECONDS - 5 - time.monotonic())

        async def counted() -> bool:
            return await today_input(client, "gemini-cli") == 1234

        await until_async(counted, timeout=budget, what="the chat of a folder made after start")
        assert logged(client, f"{gemini / 'tmp'} appeared: watching it")
        # from now on it is watched as any folder is: an appended message is a hint
        chat = next(gemini.glob("tmp/*/chats/*.jsonl"))
        with chat.open("a") as f:
            f.write(gemini_message("g2", format_ts(utc_now()), 10, 1, 0))

        async def grown() -> bool:
            return await today_input(client, "gemini-cli") == 1244

        await until_async(grown, timeout=WATCHED, what="a message appended afterwards")
        assert time.monotonic() < scanned + SCAN_INTERVAL_SECONDS


async def test_where_ancestors_are_not_watched_the_missing_folders_are_looked_for(
    home: Path, tmp_path: Path
) -> None:
    """The watcher as it runs on macOS and Windows (no folder watched without its subfolders):
    a missing folder is found within `AWAIT_POLL_SECONDS` of its making, and read at once."""
    user = tmp_path / "user"
    user.mkdir()
    env = {"HOME": str(user)}
    raw = {**BASE_SETTINGS, "sources": {"geminiCli": {"enabled": True}}}
    watcher = SourceWatcher(DataPaths(home), env, flat_watches=False)
    try:
        watcher.apply(parse_settings(raw, env).settings)
        scanned = await until(lambda: first_scan_done(home, "gemini-cli"), what="the first scan")
        write_chat(user / ".gemini", 4321)
        budget = min(
            AWAIT_POLL_SECONDS + WATCHED, scanned + SCAN_INTERVAL_SECONDS - 5 - time.monotonic()
        )
        await until(
            lambda: ledger_total(home, "gemini-cli").tokens[0] == 4321,
            timeout=budget,
            what="the chat of a folder made after start",
        )
    finally:
        watcher.stop()
