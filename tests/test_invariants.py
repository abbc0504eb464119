"""The guarantees of README.md's Reliability table, end to end: real sidecars over real stdio, a
real HTTP server on 127.0.0.1 playing DX, real files. Each test fails if its invariant breaks.

Only `test_leader_takeover_when_the_leader_exits` is slow (~30 s): it waits for the leader retry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

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
    kill_9,
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
FLUSH_NOW = "dxTelemetry.flushNow"
NOTHING_TO_PUSH: dict[str, list[Any]] = {
    "pushed": [],
    "failed": [],
    "pending": [],
    "unconfirmed": [],
    "expired": [],
}


# -- helpers -----------------------------------------------------------------------------------


def dx_settings(dx: FakeDx, *, flush: bool = True, **extra: Any) -> dict[str, Any]:
    """Pushing to the fake DX; `flush` is the background push (delay 0)."""
    return {
        **BASE_SETTINGS,
        "instanceUrl": dx.url,
        "flush": {"enabled": flush, "delaySeconds": 0},
        **extra,
    }


async def launch_many(
    stack: AsyncExitStack, home: Path, settings: dict[str, Any], count: int
) -> list[Sidecar]:
    """`count` sidecars started at the same moment, each closed when `stack` unwinds."""
    started = await asyncio.gather(
        *(start_sidecar(home, settings) for _ in range(count)), return_exceptions=True
    )
    clients = [c for c in started if isinstance(c, Sidecar)]
    for client in clients:
        stack.push_async_callback(stop_sidecar, client)
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome
    return clients


async def finish(client: Sidecar) -> None:
    """shutdown + exit, then read the sidecar's stderr to its end (every line can be checked)."""
    await asyncio.wait_for(client.shutdown_session(), 10)
    forwarder = client._stderr_forwarder
    if forwarder is not None:
        await asyncio.wait_for(asyncio.shield(forwarder), 5)
    await client.stop()


async def cli(home: Path, *args: str, **env: str) -> Any:
    """`dx-lsp-telemetry ARGS` in a thread (the event loop keeps serving the sidecars)."""
    return await asyncio.to_thread(run_cli, home, *args, **env)


async def cli_record(home: Path, *args: str) -> dict[str, Any]:
    done = await cli(home, "record", *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def totals(
    events: int,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
    spend_cents: float = 0.0,
) -> dict[str, Any]:
    """A totals object (README.md, "The LSP interface")."""
    return {
        "events": events,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cache_read_tokens": cache_read_tokens,
        "spend_cents": spend_cents,
    }


def dx_record(
    date: str,
    *,
    tool: str = TOOL,
    email: str = EMAIL,
    metrics: dict[str, Any] | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
    spend_cents: int = 0,
    events: int = 1,
) -> dict[str, Any]:
    """The `aiToolMetrics.push` body DX must receive."""
    return {
        "email": email,
        "date": date,
        "is_active": events > 0,
        "tool": tool,
        "metrics": {"events": events, **(metrics or {})},
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cache_read_tokens": cache_read_tokens,
        "spend_cents": spend_cents,
    }


def entry(status: dict[str, Any], date: str, tool: str = TOOL) -> dict[str, Any]:
    """The status (or report) entry of (date, tool), which must be there."""
    found = day_entry(status, date, tool)
    assert found is not None, f"no {date} {tool} in {status['days']}"
    return found


def pushed(*items: tuple[str, str]) -> dict[str, Any]:
    return {
        "pushed": [{"date": d, "tool": t, "destination": "dx"} for d, t in items],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }


def sum_events(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """TOTALS of distinct events (the test's own arithmetic, all integers but spend)."""
    result = totals(0)
    for e in events:
        result["events"] += 1
        for name in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            result[name] += e.get(name, 0)
        result["spend_cents"] += e.get("spend_cents", 0)
    result["spend_cents"] = round(result["spend_cents"], 2)
    return result


# -- nothing acknowledged is lost: kill -9 -----------------------------------------------------


async def test_every_acknowledged_event_survives_kill_9(home: Path, dx: FakeDx) -> None:
    day = date_ago(2)
    events = [
        {
            "event_id": f"kill-{i}",
            "timestamp": days_ago(2, i % 24, i % 60),
            "input_tokens": 100 + i,
            "output_tokens": i,
            "cache_write_tokens": 3,
            "cache_read_tokens": 7 * i,
            "spend_cents": 0.25,
        }
        for i in range(40)
    ]
    expected = sum_events(events)
    assert expected == totals(40, 4780, 780, 120, 5460, 10.0)

    first = await start_sidecar(home, dx_settings(dx, flush=False))
    try:
        answers = await asyncio.gather(*(first.record(**e) for e in events))
        first.process.kill()  # the moment the last answer arrived: no shutdown, no fsync
    finally:
        await kill_9(first)
    assert first.process.returncode == -9
    assert all(a["recorded"] and a["date"] == day for a in answers)

    status = await asyncio.to_thread(cli_json, home, "status", "--json")
    assert entry(status, day)["totals"] == expected

    async with sidecar(home, dx_settings(dx, flush=False)) as second:
        assert entry(await second.status(), day)["totals"] == expected
        assert await second.command(FLUSH_NOW) == pushed((day, TOOL))
    assert dx.stored == [
        dx_record(
            day,
            events=40,
            input_tokens=4780,
            output_tokens=780,
            cache_write_tokens=120,
            cache_read_tokens=5460,
            spend_cents=10,
        )
    ]


# -- never twice: many sidecars, one leader ----------------------------------------------------


async def test_three_sidecars_at_once_push_each_day_exactly_once_with_one_leader(
    home: Path, dx: FakeDx
) -> None:
    days = {2: date_ago(2), 3: date_ago(3)}
    tools = (TOOL, "other-ai")
    plan: list[tuple[int, dict[str, Any]]] = []  # (window, event)
    for window in range(3):
        for i in range(12):
            ago = 2 + i % 2
            plan.append(
                (
                    window,
                    {
                        "event_id": f"w{window}-{i}",
                        "tool": tools[(i // 2) % 2],
                        "timestamp": days_ago(ago, 1 + i, window),
                        "input_tokens": 1 + 100 * window + i,
                        "output_tokens": 2 * i,
                        "spend_cents": 0.5,
                    },
                )
            )
    shared = [
        {"event_id": f"shared-{i}", "timestamp": days_ago(2, 20, i), "input_tokens": 1000}
        for i in range(3)
    ]
    plan += [(window, e) for e in shared for window in range(3)]  # one event, three windows

    distinct = {e["event_id"]: e for _, e in plan}.values()
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for ago, day in days.items():
        for tool in tools:
            mine = [
                e
                for e in distinct
                if e.get("tool", TOOL) == tool and e["timestamp"].startswith(day)
            ]
            assert mine or ago == 3
            if mine:
                expected[(day, tool)] = sum_events(mine)
    assert sum(t["events"] for t in expected.values()) == 36 + 3

    async with AsyncExitStack() as stack:
        # no background push until every event is in: then all push at once, below
        windows = await launch_many(stack, home, dx_settings(dx, flush=False), 3)

        async def leaders() -> list[bool]:
            return [s["leader"] for s in await asyncio.gather(*(w.status() for w in windows))]

        async def one_leader() -> bool:
            return (await leaders()).count(True) == 1

        await until_async(one_leader, what="one leader among three sidecars")
        await asyncio.gather(*(windows[w].record(**e) for w, e in plan))

        # at once: the leader's schedule (a flush setting changed: it pushes within 1 s),
        # Flush Now in every window and the CLI's flush; the push lock lets one push each day
        for window in windows:
            window.change_settings(
                {**dx_settings(dx), "flush": {"enabled": True, "delaySeconds": 1}}
            )
        results = await asyncio.gather(
            *(w.command(FLUSH_NOW) for w in windows), cli(home, "flush", "--json")
        )
        cli_done = results[-1]
        assert cli_done.returncode == 0, cli_done.stderr
        reports = [*results[:-1], json.loads(cli_done.stdout)]
        assert all(not r["failed"] and not r["unconfirmed"] for r in reports), reports
        by_hand = [(p["date"], p["tool"]) for r in reports for p in r["pushed"]]
        assert len(by_hand) == len(set(by_hand)) and set(by_hand) <= set(expected), by_hand
        await until(lambda: len(dx.stored) >= len(expected), what="every day pushed")
        assert await windows[0].command(FLUSH_NOW) == NOTHING_TO_PUSH

        assert sorted(await leaders()).count(True) == 1
        status = await windows[0].status()
        for (day, tool), want in expected.items():
            assert entry(status, day, tool)["state"] == "pushed"
            assert entry(status, day, tool)["totals"] == want

    assert sorted(dx.stored_keys()) == sorted((EMAIL, d, t) for d, t in expected)
    assert len(dx.requests) == len(expected)
    for record in dx.stored:
        want = expected[(record["date"], record["tool"])]
        assert record["metrics"] == {"events": want["events"]}
        assert record["input_tokens"] == want["input_tokens"]
        assert record["output_tokens"] == want["output_tokens"]
        assert record["spend_cents"] == int(want["spend_cents"] + 0.5)


# -- the leader lock: takeover -----------------------------------------------------------------


async def test_leader_takeover_when_the_leader_exits(home: Path, dx: FakeDx) -> None:
    """SLOW (~30 s, the only such test): the others retry the leader lock every 30 s."""
    d3, d2 = date_ago(3), date_ago(2)
    await cli_record(home, "--tool", TOOL, "--timestamp", days_ago(3), "--input-tokens", "3")
    settings = dx_settings(dx)  # background push on, delay 0
    async with AsyncExitStack() as stack:
        first = await start_sidecar(home, settings)
        stack.push_async_callback(stop_sidecar, first)
        await until(lambda: dx.stored, what="the leader's start-up push")
        assert (await first.status())["leader"] is True
        # its start-up cycle is over once Flush Now had the (same) push thread and lock
        assert await first.command(FLUSH_NOW) == NOTHING_TO_PUSH

        second = await start_sidecar(home, settings)
        stack.push_async_callback(stop_sidecar, second)
        await second.record(event_id="after", timestamp=days_ago(2), input_tokens=5)
        assert (await second.status())["leader"] is False

        await stop_sidecar(first)
        await until(lambda: len(dx.stored) == 2, timeout=45, what="the new leader's push")

        async def pushed_d2() -> dict[str, Any] | None:
            # DX stores the record before it answers: `pushed` is written just after
            status = await second.status()
            return status if state_of(status, d2) == "pushed" else None

        status = await until_async(pushed_d2, what="the journal to say pushed")
        assert status["leader"] is True
    assert dx.stored == [dx_record(d3, input_tokens=3), dx_record(d2, input_tokens=5)]
    assert len(dx.requests) == 2


# -- never twice, never silently dropped: a crash between `sending` and DX's answer ------------


async def test_a_crash_while_dx_answers_leaves_the_day_unconfirmed_and_never_resent(
    home: Path, dx: FakeDx
) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    await cli_record(home, "--tool", TOOL, "--timestamp", days_ago(3), "--input-tokens", "30")
    await cli_record(home, "--tool", TOOL, "--timestamp", days_ago(2), "--input-tokens", "20")
    # DX holds both requests: the record may well be stored, but no answer comes back
    dx.then(Script(kind="slow", delay=120), Script(kind="slow", delay=120))
    settings = dx_settings(dx)  # the background push at start-up does the pushing

    first = await start_sidecar(home, settings)
    try:
        await until(lambda: dx.requests, what="the first POST to reach DX")
        assert dx.requests[0].body["date"] == d3 and dx.requests[0].answered is None
    finally:
        await kill_9(first)

    second = await start_sidecar(home, settings)
    try:
        # its start-up push settles the interrupted one without re-sending it, then goes on
        await until(lambda: len(dx.requests) == 2, what="the second POST to reach DX")
        assert dx.requests[1].body["date"] == d2 and dx.requests[1].answered is None
    finally:
        await kill_9(second)

    # the background push off: only the start-up itself may settle what the crash left
    async with sidecar(home, dx_settings(dx, flush=False)) as third:

        async def both_unconfirmed() -> dict[str, Any] | None:
            status = await third.status()
            states = {state_of(status, d) for d in (d2, d3)}
            return status if states == {"unconfirmed"} else None

        status = await until_async(both_unconfirmed, what="both days unconfirmed")
        for day in (d2, d3):
            error = entry(status, day)["error"]
            assert "interrupted" in error and "DX" in error, error

        assert await third.command(FLUSH_NOW) == NOTHING_TO_PUSH
        assert len(dx.requests) == 2  # Flush Now does not send them again

        assert await third.command("dxTelemetry.resendDay", d3, TOOL) == pushed((d3, TOOL))
        assert len(dx.requests) == 3
        assert await third.command("dxTelemetry.markPushed", d2, TOOL) == {
            "date": d2,
            "tool": TOOL,
            "state": "pushed",
        }
        assert len(dx.requests) == 3  # marked, not sent

        status = await third.status()
        assert (state_of(status, d3), state_of(status, d2)) == ("pushed", "pushed")
        assert await third.command(FLUSH_NOW) == NOTHING_TO_PUSH
    assert dx.stored == [dx_record(d3, input_tokens=30)]
    assert len(dx.requests) == 3


# -- nothing acknowledged is lost: a torn last line --------------------------------------------


async def test_a_torn_last_ledger_line_warns_and_never_swallows_the_next_event(
    home: Path, dx: FakeDx
) -> None:
    day = date_ago(2)
    for i, tokens in enumerate((10, 20)):
        await cli_record(
            home,
            *("--tool", TOOL, "--event-id", f"whole-{i}", "--timestamp", days_ago(2, 8 + i)),
            *("--input-tokens", str(tokens)),
        )
    ledger = home / "ledger" / f"{day}.jsonl"
    line = {
        "type": "usage",
        "event_id": "torn",
        "timestamp": days_ago(2, 11),
        "tool": TOOL,
        "input_tokens": 5000,
        "output_tokens": 0,
        "cache_write_tokens": 0,
        "cache_read_tokens": 0,
        "spend_cents": 0,
    }
    torn = json.dumps(line, separators=(",", ":")).encode()[:-20]  # a write cut short
    with open(ledger, "ab") as f:
        f.write(torn)

    async with sidecar(home, dx_settings(dx, flush=False)) as client:
        status = await client.status()
        assert entry(status, day)["totals"] == totals(2, 30)
        await until(
            lambda: any(
                ledger.name in m.message and m.type == types.MessageType.Warning
                for m in client.log_messages
            ),
            what="a warning about the torn line",
        )
        assert any(ledger.name in line and "WARNING" in line for line in client.stderr_lines)

        answer = await client.record(event_id="after", timestamp=days_ago(2, 12), input_tokens=300)
        assert answer["recorded"] and answer["duplicate"] is False
        status = await client.status()
        assert entry(status, day)["totals"] == totals(3, 330)
        assert await client.command(FLUSH_NOW) == pushed((day, TOOL))

    data = ledger.read_bytes()
    assert torn + b"\n" in data and data.endswith(b"\n")  # the torn line was sealed off
    fresh = await asyncio.to_thread(cli_json, home, "report", "--json")  # a reader from byte 0
    assert entry(fresh, day)["totals"] == totals(3, 330)
    assert dx.stored == [dx_record(day, events=3, input_tokens=330)]


# -- the token stays secret; silent (no pop-ups) -----------------------------------------------


async def test_the_token_is_nowhere_but_the_request_and_nothing_pops_up(
    home: Path, dx: FakeDx
) -> None:
    d4, d3, d2 = date_ago(4), date_ago(3), date_ago(2)
    dx.then(Script(kind="status", status=401), Script(kind="status", status=500))
    settings = dx_settings(dx, flush=False, dayBoundary="mars", notASetting=True)
    client = await start_sidecar(home, settings)
    try:
        cmdline = Path(f"/proc/{client.pid}/cmdline")
        if cmdline.exists():
            assert TEST_TOKEN.encode() not in cmdline.read_bytes()
        for ago in (4, 3, 2):
            await client.record(timestamp=days_ago(ago), input_tokens=ago, spend_cents=0.5)
        with pytest.raises(JsonRpcInvalidParams, match="input_tokens"):
            await client.record(input_tokens=-1)

        first = await client.command(FLUSH_NOW)  # 401: failed, pushes paused
        assert [f["date"] for f in first["failed"]] == [d4] and "401" in first["failed"][0]["error"]
        status = await client.status()
        assert any("paused" in p for p in status["config"]["problems"])
        second = await client.command(FLUSH_NOW)  # 500: unconfirmed
        assert second["unconfirmed"] == [{"date": d4, "tool": TOOL}]
        assert await client.command(FLUSH_NOW) == pushed((d3, TOOL), (d2, TOOL))
        status = await client.status()
        assert [state_of(status, d) for d in (d4, d3, d2)] == ["unconfirmed", "pushed", "pushed"]
        await until(
            lambda: client.statuses and state_of(client.statuses[-1], d2) == "pushed",
            what="statusChanged after the push",
        )
        for args in (("status",), ("status", "--json"), ("flush",), ("report", "--json")):
            done = await cli(home, *args)
            assert TEST_TOKEN not in done.stdout + done.stderr, args
    finally:
        if client.process.returncode is None:
            await finish(client)
        else:
            await kill_9(client)
    assert client.process.returncode == 0

    # the run did what it claims: it logged the 401 and the 500, on stderr and to the editor
    stderr = "\n".join(client.stderr_lines)
    assert "401" in stderr and "500" in stderr, stderr
    assert "401" in client.log_text() and "500" in client.log_text()
    assert [r.answered for r in dx.requests] == [401, 500, 200, 200]
    assert all(r.headers["authorization"] == f"Bearer {TEST_TOKEN}" for r in dx.requests)

    assert TEST_TOKEN not in all_files_text(home)
    assert TEST_TOKEN not in stderr
    assert TEST_TOKEN not in client.log_text()
    assert TEST_TOKEN not in json.dumps(client.statuses)
    assert TEST_TOKEN not in json.dumps(status)
    assert client.messages == []  # no window/showMessage, ever


# -- exact totals ------------------------------------------------------------------------------


async def test_pushed_records_are_the_exact_sum_of_distinct_events(home: Path, dx: FakeDx) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    last_instant_of_d3 = f"{d3}T23:59:59.999Z"
    first_instant_of_d2 = f"{d2}T00:00:00Z"
    async with sidecar(home, dx_settings(dx, flush=False)) as client:

        async def rec(duplicate: bool, **event: Any) -> None:
            answer = await client.record(**event)
            assert answer["recorded"] is True
            assert answer["duplicate"] is duplicate, (event, answer)

        # d2, acme-ai
        ts = first_instant_of_d2
        await rec(
            False, event_id="a", timestamp=ts, input_tokens=1000, output_tokens=200, spend_cents=0.1
        )
        await rec(True, event_id="a", timestamp=ts, input_tokens=10)  # smaller total: loses
        await rec(False, event_id="b", timestamp=ts, input_tokens=5, spend_cents=0.7)
        await rec(
            True, event_id="b", timestamp=ts, input_tokens=5, output_tokens=5, spend_cents=0.2
        )  # larger total: wins
        await rec(
            False,
            event_id="c",
            timestamp=ts,
            cache_read_tokens=40,
            spend_cents=0.3,
            metrics={"lines": 2},
        )
        await rec(
            True,
            event_id="c",
            timestamp=ts,
            cache_write_tokens=40,
            spend_cents=0.4,
            metrics={"lines": 3.5},
        )  # a tie: the later one wins
        await rec(
            False,
            event_id="d",
            timestamp=days_ago(2, 9),
            output_tokens=7,
            cost_usd=0.0123,
            metrics={"lines": 1.25, "files.touched": 2},
        )
        await rec(False, timestamp=days_ago(2, 10), input_tokens=1, spend_cents=0.1)
        await rec(False, event_id="x", timestamp=last_instant_of_d3, input_tokens=10)
        await rec(True, event_id="x", timestamp=days_ago(2, 11), input_tokens=11)  # moves days
        await rec(False, event_id="g", timestamp=days_ago(2, 12), input_tokens=50, spend_cents=0.3)
        # the CLI writes the same ledger: one new event, one losing duplicate
        await cli_record(
            home,
            *("--event-id", "e", "--timestamp", days_ago(2, 13), "--input-tokens", "3"),
            *("--spend-cents", "0.17", "--metric", "lines=0.25"),
        )
        again = await cli_record(
            home,
            *("--event-id", "g", "--timestamp", days_ago(2, 12), "--input-tokens", "2"),
            *("--spend-cents", "0.9"),
        )
        assert again["duplicate"] is True
        # d2, another tool
        await rec(
            False, event_id="o", tool="other-ai", timestamp=ts, input_tokens=9, spend_cents=0.49
        )
        # d3, acme-ai: token counts near the limit, cents that sum to exactly one half
        await rec(
            False,
            event_id="h",
            timestamp=days_ago(3, 1),
            cache_read_tokens=10**12,
            spend_cents=0.125,
        )
        await rec(
            False,
            event_id="i",
            timestamp=last_instant_of_d3,
            cache_read_tokens=10**12,
            input_tokens=15,
            spend_cents=0.375,
        )

        # by hand: d2 acme-ai = a(1000/200/0.1) b(5/5/0.2) c(cw 40/0.4, lines 3.5)
        # d(out 7, 1.23 cents, lines 1.25, files 2) uuid(1/0.1) x(11) g(50/0.3) e(3/0.17, 0.25)
        d2_acme = totals(8, 1070, 212, 40, 0, 2.5)
        status = await client.status()
        assert entry(status, d2)["totals"] == d2_acme
        assert entry(status, d2, "other-ai")["totals"] == totals(1, 9, spend_cents=0.49)
        assert entry(status, d3)["totals"] == totals(2, 15, 0, 0, 2 * 10**12, 0.5)

        assert await client.command(FLUSH_NOW) == pushed((d3, TOOL), (d2, TOOL), (d2, "other-ai"))
    assert dx.stored == [
        dx_record(d3, events=2, input_tokens=15, cache_read_tokens=2 * 10**12, spend_cents=1),
        dx_record(
            d2,
            events=8,
            input_tokens=1070,
            output_tokens=212,
            cache_write_tokens=40,
            spend_cents=3,  # 2.5 exactly, rounded half up (not to even, not 2.4999...)
            metrics={"files.touched": 2, "lines": 5},
        ),
        dx_record(d2, tool="other-ai", input_tokens=9, spend_cents=0),
    ]


# -- other windows stay current ----------------------------------------------------------------


def _today_tokens(status: dict[str, Any] | None) -> tuple[int, int]:
    tools = status["today"]["tools"] if status else {}
    t = tools.get(TOOL, totals(0))
    return t["events"], t["input_tokens"]


async def test_another_window_sees_events_and_pushes_within_2_seconds(
    home: Path, dx: FakeDx
) -> None:
    d2 = date_ago(2)
    settings = dx_settings(dx, flush=False)
    async with AsyncExitStack() as stack:
        a, b = await launch_many(stack, home, settings, 2)
        await until(lambda: a.statuses and b.statuses, what="first statusChanged of each")

        await a.record(event_id="via-a", input_tokens=5)
        await until(
            lambda: _today_tokens(b.statuses[-1]) == (1, 5),
            timeout=2,
            what="B's statusChanged to show A's event",
        )
        assert _today_tokens(await b.status()) == (1, 5)

        await cli_record(home, "--event-id", "via-cli", "--input-tokens", "7")
        await until(
            lambda: (
                _today_tokens(b.statuses[-1]) == (2, 12)
                and _today_tokens(a.statuses[-1]) == (2, 12)
            ),
            timeout=2,
            what="both windows' statusChanged to show the CLI's event",
        )
        assert _today_tokens(await b.status()) == (2, 12)

        await b.record(event_id="complete-day", timestamp=days_ago(2), input_tokens=9)
        await until(
            lambda: state_of(a.statuses[-1], d2) == "pending",
            timeout=2,
            what="A's statusChanged to show B's event",
        )
        assert await a.command(FLUSH_NOW) == pushed((d2, TOOL))
        await until(
            lambda: state_of(b.statuses[-1], d2) == "pushed",
            timeout=2,
            what="B's statusChanged to show A's push",
        )
        assert state_of(await b.status(), d2) == "pushed"
    assert dx.stored == [dx_record(d2, input_tokens=9)]


# -- late events -------------------------------------------------------------------------------


async def test_an_event_for_a_pushed_day_is_kept_as_late_and_never_pushed(
    home: Path, dx: FakeDx
) -> None:
    d3, d2 = date_ago(3), date_ago(2)
    async with sidecar(home, dx_settings(dx, flush=False)) as client:
        await client.record(
            event_id="on-time", timestamp=days_ago(2, 9), input_tokens=100, spend_cents=1.5
        )
        assert await client.command(FLUSH_NOW) == pushed((d2, TOOL))
        answer = await client.record(
            event_id="late",
            timestamp=days_ago(2, 23),
            input_tokens=40,
            output_tokens=2,
            spend_cents=0.5,
        )
        assert answer["recorded"] is True and answer["date"] == d2
        late_day = entry(await client.status(), d2)
        assert late_day["state"] == "pushed"
        assert late_day["totals"] == totals(1, 100, spend_cents=1.5)
        assert late_day["late"] == totals(1, 40, 2, spend_cents=0.5)
        assert await client.command(FLUSH_NOW) == NOTHING_TO_PUSH

    report = await asyncio.to_thread(cli_json, home, "report", "--json")
    assert entry(report, d2)["totals"] == totals(2, 140, 2, spend_cents=2.0)

    # a restart with the background push: it pushes an older day, never the late event
    await cli_record(home, "--tool", TOOL, "--timestamp", days_ago(3), "--input-tokens", "1")
    async with sidecar(home, dx_settings(dx)) as client:
        await until(lambda: len(dx.stored) == 2, what="the start-up push of the older day")
        assert await client.command(FLUSH_NOW) == NOTHING_TO_PUSH  # after the start-up cycle
        late_day = entry(await client.status(), d2)
        assert late_day["state"] == "pushed"
        assert late_day["late"] == totals(1, 40, 2, spend_cents=0.5)
    assert dx.stored == [
        dx_record(d2, input_tokens=100, spend_cents=2),
        dx_record(d3, input_tokens=1),
    ]
    assert len(dx.requests) == 2


# -- privacy -----------------------------------------------------------------------------------


async def test_privacy_prompts_code_and_paths_are_refused_and_leave_no_trace(
    home: Path, dx: FakeDx
) -> None:
    private = "refactor /home/alice/payroll/salaries.py: def pay(): ..."
    client = await start_sidecar(home, dx_settings(dx, flush=False))
    try:
        for name in ("prompt", "code", "file", "path", "messages"):
            with pytest.raises(JsonRpcInvalidParams, match=name):
                await client.record(input_tokens=1, **{name: private})
        await client.record(timestamp=days_ago(2), model="model-x", source="api", input_tokens=2)
        assert await client.command(FLUSH_NOW) == pushed((date_ago(2), TOOL))
    finally:
        if client.process.returncode is None:
            await finish(client)
        else:
            await kill_9(client)

    allowed = {
        *("type", "event_id", "timestamp", "recorded_at", "pid", "tool", "model", "source"),
        *("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"),
        *("spend_cents", "metrics"),
    }
    lines = [
        json.loads(line)
        for path in sorted((home / "ledger").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len([x for x in lines if x["type"] == "usage"]) == 1
    assert all(set(line) <= allowed for line in lines), lines
    for where in (all_files_text(home), "\n".join(client.stderr_lines), client.log_text()):
        assert "alice" not in where and "payroll" not in where
    assert dx.stored == [dx_record(date_ago(2), input_tokens=2)]
