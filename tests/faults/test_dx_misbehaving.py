"""Fault injection, "DX misbehaving": each way DX (or something in front of it) can answer badly
ends in the state README.md's retry table names, and nothing else breaks.

Driven as a user would: a real sidecar over stdio with `email`, `tool`, `instanceUrl` (the fake
DX on loopback) and `flush.delaySeconds` 0; events recorded with `dxTelemetry/recordUsage` for
complete days; the push is the leader's own schedule (or Flush Now, where a user would decide).
Each day's end state is read from `dxTelemetry/status`, from `dx-lsp-telemetry status --json`
and from the journal. An absence ("nothing more is sent") is watched over a short window that
fails the moment it breaks; everything else waits on a condition with a deadline.

The slow-answer case waits out the real 30 s read timeout; the rest take a few seconds each.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.push.dx import ANSWER_CAP, PUSH_PATH, TIMEOUT
from dx_lsp_telemetry.settings.days import parse_ts
from tests.fake_dx import FakeDx, Script
from tests.harness import (
    BASE_SETTINGS,
    TEST_TOKEN,
    Sidecar,
    all_files_text,
    cli_json,
    date_ago,
    day_entry,
    days_ago,
    run_cli,
    sidecar,
    start_sidecar,
    state_of,
    stop_sidecar,
    until,
    until_async,
)

TOOL = "acme-ai"
EMAIL = "dev@example.com"
MIB = 1024 * 1024
FLUSH_NOW = "dxTelemetry.flushNow"
READ_TIMEOUT = TIMEOUT.read or 30.0


# -- helpers -----------------------------------------------------------------------------------


def dx_settings(dx: FakeDx, *, flush: bool = True) -> dict[str, Any]:
    return {**BASE_SETTINGS, "instanceUrl": dx.url, "flush": {"enabled": flush, "delaySeconds": 0}}


def dx_record(date: str, *, events: int = 1, input_tokens: int = 0) -> dict[str, Any]:
    """The `aiToolMetrics.push` body DX must receive for `date` (input tokens only)."""
    return {
        "email": EMAIL,
        "date": date,
        "is_active": True,
        "tool": TOOL,
        "metrics": {"events": events},
        "input_tokens": input_tokens,
        "output_tokens": 0,
        "cache_write_tokens": 0,
        "cache_read_tokens": 0,
        "spend_cents": 0,
    }


def journal_lines(home: Path, date: str) -> list[dict[str, Any]]:
    path = home / "journal.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [x for x in lines if x["date"] == date and x["tool"] == TOOL]


async def settled(
    client: Sidecar, home: Path, states: dict[str, str], *, timeout: float = 10.0
) -> dict[str, dict[str, Any]]:
    """Wait until the sidecar's status shows each `{date: state}`; the CLI's `status --json`
    and the journal must agree. Returns the sidecar's entries by date.

    A `pending` day counts only once it waits to retry (`retryAt`), i.e. after an attempt.
    """

    def matches(status: dict[str, Any], date: str, state: str) -> dict[str, Any] | None:
        entry = day_entry(status, date, TOOL)
        if entry is None or entry["state"] != state:
            return None
        return entry if state != "pending" or "retryAt" in entry else None

    async def reached() -> dict[str, dict[str, Any]] | None:
        status = await client.status()
        entries = {}
        for date, state in states.items():
            entry = matches(status, date, state)
            if entry is None:
                return None
            entries[date] = entry
        return entries

    what = ", ".join(f"{date} {state}" for date, state in states.items())
    entries: dict[str, dict[str, Any]] = await until_async(reached, timeout, what=what)
    from_cli = await asyncio.to_thread(cli_json, home, "status", "--json")
    for date, state in states.items():
        shown = matches(from_cli, date, state)
        assert shown is not None, day_entry(from_cli, date, TOOL)
        assert shown.get("error") == entries[date].get("error")
        assert journal_lines(home, date)[-1]["state"] == state
    return entries


async def stays(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """An absence, watched for `seconds`: fails the moment `predicate` stops holding."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what} did not hold for {seconds} s"
        await asyncio.sleep(0.02)
    assert predicate(), what


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


# -- ambiguous answers: unconfirmed, never re-sent by itself -----------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        pytest.param(
            Script(
                kind="status",
                status=502,
                body=b"<html><head><title>502 Bad Gateway</title></head>"
                b"<body><center><h1>502 Bad Gateway</h1></center></body></html>",
            ),
            "HTTP 502",
            id="html-502",
        ),
        pytest.param(Script(kind="garbage"), "200 without a readable ok", id="200-not-json"),
    ],
)
async def test_an_ambiguous_answer_is_unconfirmed_and_never_resent_by_itself(
    home: Path, dx: FakeDx, answer: Script, says: str
) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    dx.then(answer)
    async with sidecar(home, dx_settings(dx, flush=False)) as client:
        await client.record(event_id="a", timestamp=days_ago(3), input_tokens=30)
        await client.record(event_id="b", timestamp=days_ago(2), input_tokens=20)
        client.change_settings(dx_settings(dx))  # the user turns the background push on

        entry = (await settled(client, home, {d3: "unconfirmed"}))[d3]
        assert says in entry["error"] and "may be stored" in entry["error"], entry

        # the cycle ended at the ambiguous answer and the schedule backs off: backfills on
        # both days start no push, so a sick DX is not hit once per day of backlog
        await client.record(event_id="c", timestamp=days_ago(3, 13), input_tokens=3)
        await client.record(event_id="d", timestamp=days_ago(2, 13), input_tokens=2)
        await stays(lambda: len(dx.requests) == 1, 2.0, "nothing more sent to DX")

        # the user's Flush Now pushes d2; d3, changed or not, is the user's to decide
        assert await client.command(FLUSH_NOW) == {
            "pushed": [{"date": d2, "tool": TOOL, "destination": "dx"}],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
        entry = (await settled(client, home, {d2: "pushed", d3: "unconfirmed"}))[d3]
        assert entry["late"]["input_tokens"] == 3  # the backfill shows, apart from what was sent
    assert [r.body["date"] for r in dx.requests] == [d3, d2]
    assert dx.stored == [dx_record(d2, events=2, input_tokens=22)]


# -- payload rejected: failed, and only a changed record is sent again --------------------------


async def test_ok_false_fails_with_dx_error_and_a_changed_record_is_sent_by_itself(
    home: Path, dx: FakeDx
) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    refusal = {"ok": False, "error": "invalid_arguments", "message": "tool acme-ai is not enabled"}
    dx.then(Script(kind="ok_false", body=refusal))
    async with sidecar(home, dx_settings(dx)) as client:
        await client.record(event_id="a", timestamp=days_ago(3), input_tokens=30)
        entry = (await settled(client, home, {d3: "failed"}))[d3]
        assert "invalid_arguments" in entry["error"] and "is not enabled" in entry["error"]

        # the same event again leaves the record as DX refused it; a new day is pushed past it
        again = await client.record(event_id="a", timestamp=days_ago(3), input_tokens=30)
        assert again["duplicate"] is True
        await client.record(event_id="b", timestamp=days_ago(2), input_tokens=20)
        await settled(client, home, {d2: "pushed", d3: "failed"})
        assert len(dx.requests_for(d3)) == 1

        # a backfill changes d3's record: tried again by itself (no Flush Now, no restart)
        await client.record(event_id="c", timestamp=days_ago(3, 13), input_tokens=3)
        await settled(client, home, {d3: "pushed"}, timeout=15)
    assert len(dx.requests_for(d3)) == 2
    assert dx.stored == [dx_record(d2, input_tokens=20), dx_record(d3, events=2, input_tokens=33)]


# -- a redirect: never followed, the token goes nowhere else ------------------------------------


@pytest.mark.parametrize("code", [302, 307])
async def test_a_redirect_is_never_followed_fails_and_pauses_until_the_settings_change(
    home: Path, dx: FakeDx, code: int
) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    with FakeDx(TEST_TOKEN) as elsewhere, FakeDx(TEST_TOKEN) as fixed:
        target = elsewhere.url + PUSH_PATH  # the real push path: following it would store it
        dx.then(Script(kind="status", status=code, headers={"Location": target}))
        async with sidecar(home, dx_settings(dx)) as client:
            await client.record(timestamp=days_ago(3), input_tokens=30)
            entry = (await settled(client, home, {d3: "failed"}))[d3]
            assert f"HTTP {code}" in entry["error"] and target in entry["error"], entry
            status = await client.status()
            assert any("paused" in p for p in status["config"]["problems"]), status["config"]

            # paused: an event for another day starts no push while the settings stay
            await client.record(timestamp=days_ago(2), input_tokens=20)
            assert state_of(await client.status(), d2) == "pending"
            await stays(lambda: len(dx.requests) == 1, 2.0, "nothing more sent while paused")

            # the user fixes instanceUrl: the pause ends and both days go there, once each
            client.change_settings(dx_settings(fixed))
            await settled(client, home, {d3: "pushed", d2: "pushed"})
        assert elsewhere.connections == 0 and elsewhere.requests == []
        assert len(dx.requests) == 1
        assert fixed.stored == [dx_record(d3, input_tokens=30), dx_record(d2, input_tokens=20)]


# -- a huge answer: read with a cap, memory stays bounded ---------------------------------------


async def test_a_50_mb_answer_is_unconfirmed_and_never_held_in_memory(
    home: Path, dx: FakeDx
) -> None:
    d2 = date_ago(2)
    size = 50 * MIB
    dx.then(Script(kind="big", size=size))  # 200, "ok": true, then 50 MB of padding
    async with sidecar(home, dx_settings(dx)) as client:
        await client.record(timestamp=days_ago(2), input_tokens=20)
        entry = (await settled(client, home, {d2: "unconfirmed"}, timeout=30))[d2]
        assert f"{ANSWER_CAP // MIB} MiB" in entry["error"], entry
        peak = peak_rss_bytes(client.pid)
        assert peak < 150 * MIB, f"peak RSS {peak / MIB:.0f} MiB"
        assert client.process.returncode is None
        await client.record(timestamp=days_ago(0, hour=0), input_tokens=1)  # it keeps working
        assert (await client.status())["today"]["tools"][TOOL]["input_tokens"] == 1
    assert dx.requests[0].sent_bytes < size // 2  # DX could not even send it all
    assert dx.stored == []


# -- a slow answer: the sidecar stays responsive, then the day is unconfirmed -------------------


async def test_an_answer_slower_than_the_read_timeout_is_unconfirmed_and_status_keeps_answering(
    home: Path, dx: FakeDx
) -> None:
    d2 = date_ago(2)
    dx.then(Script(kind="slow", delay=READ_TIMEOUT + 10, store=True))  # DX stores, then stalls
    async with sidecar(home, dx_settings(dx)) as client:
        await client.record(timestamp=days_ago(2), input_tokens=20)
        await until(lambda: dx.requests, what="the POST to reach DX")
        sent = time.monotonic()
        slowest = 0.0

        async def unconfirmed() -> bool:
            nonlocal slowest
            asked = time.monotonic()
            status = await client.status()
            slowest = max(slowest, time.monotonic() - asked)
            assert slowest < 1.0, f"status took {slowest:.2f} s while a push waited on DX"
            return state_of(status, d2) == "unconfirmed"

        await until_async(unconfirmed, READ_TIMEOUT + 10, what=f"{d2} unconfirmed")
        assert time.monotonic() - sent >= READ_TIMEOUT - 1  # it waited for the read timeout
        entry = (await settled(client, home, {d2: "unconfirmed"}))[d2]
        assert "no answer from DX in time" in entry["error"], entry
    assert len(dx.requests) == 1


# -- throttled: Retry-After is honoured, then the day is pushed once ----------------------------


async def test_429_with_retry_after_waits_that_long_then_pushes_once(
    home: Path, dx: FakeDx
) -> None:
    d2 = date_ago(2)
    wait = 4
    dx.then(
        Script(
            kind="status",
            status=429,
            headers={"Retry-After": str(wait)},
            body={"ok": False, "error": "rate_limited"},
        )
    )
    async with sidecar(home, dx_settings(dx)) as client:
        await client.record(timestamp=days_ago(2), input_tokens=20)
        entry = (await settled(client, home, {d2: "pending"}))[d2]
        assert "429" in entry["error"] and "retryAt" in entry, entry
        # Retry-After, plus a random part (up to 60 s) of the first backoff
        await settled(client, home, {d2: "pushed"}, timeout=wait + 60 + 10)
    first, second = dx.requests
    assert first.answered == 429 and first.answered_at is not None
    assert second.at - first.answered_at >= wait, "sent again before Retry-After had passed"
    retry_at = parse_ts(entry["retryAt"]).timestamp()
    assert time.time() - (time.monotonic() - second.at) >= retry_at - 0.01, "before its retryAt"
    assert dx.stored == [dx_record(d2, input_tokens=20)]


# -- the token stays secret, even when DX echoes it ---------------------------------------------


async def test_a_dx_error_that_echoes_the_token_is_scrubbed_everywhere(
    home: Path, dx: FakeDx
) -> None:
    d2 = date_ago(2)
    echo = (
        f"header 'Authorization: Bearer {TEST_TOKEN}' cannot push tool acme-ai "
        f"(token {TEST_TOKEN} lacks the metrics scope)"
    )
    dx.then(
        Script(
            kind="status",
            status=422,
            body={"ok": False, "error": "invalid_arguments", "message": echo},
        )
    )
    client = await start_sidecar(home, dx_settings(dx))
    try:
        await client.record(timestamp=days_ago(2), input_tokens=20)
        entry = (await settled(client, home, {d2: "failed"}))[d2]
        # DX's words are still shown, without the secret
        assert "invalid_arguments" in entry["error"] and "metrics scope" in entry["error"]
        status = await client.status()
        await until(
            lambda: client.statuses and state_of(client.statuses[-1], d2) == "failed",
            what="statusChanged with the failed day",
        )
        views = (["status", "--json"], ["status"])
        outputs = [await asyncio.to_thread(run_cli, home, *args) for args in views]
    finally:
        await finish(client)

    stderr = "\n".join(client.stderr_lines)
    assert "invalid_arguments" in stderr and "invalid_arguments" in client.log_text()
    assert dx.requests[0].headers["authorization"] == f"Bearer {TEST_TOKEN}"  # it did go to DX
    places = {
        "data folder": all_files_text(home),
        "journal.jsonl": (home / "journal.jsonl").read_text(encoding="utf-8"),
        "stderr": stderr,
        "window/logMessage": client.log_text(),
        "dxTelemetry/status": json.dumps(status),
        "dxTelemetry/statusChanged": json.dumps(client.statuses),
        **{f"cli {' '.join(o.args[3:])}": o.stdout + o.stderr for o in outputs},
    }
    for where, text in places.items():
        assert TEST_TOKEN not in text, where
        assert not re.search(r"(?i)bearer\s+(?!\[)", text), f"a Bearer value in {where}"


async def finish(client: Sidecar) -> None:
    """shutdown + exit, then read the sidecar's stderr to its end (every line can be checked)."""
    try:
        await asyncio.wait_for(client.shutdown_session(), 10)
        forwarder = client._stderr_forwarder
        if forwarder is not None:
            await asyncio.wait_for(asyncio.shield(forwarder), 5)
    except BaseException:
        await stop_sidecar(client)  # never an orphan
        raise
    await client.stop()
