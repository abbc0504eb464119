"""Fault injection: a full disk, as RLIMIT_FSIZE on a running sidecar (Linux).

Python ignores SIGXFSZ, so a write past the limit is cut short and the next one fails with
EFBIG, as on a full disk (ENOSPC). The limit is set and lifted on the live process with
prlimit(2): space returns without a restart.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from tests.fake_dx import FakeDx
from tests.faults.ledger_files import read_journal, read_ledger, totals
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    cli_json,
    date_ago,
    day_entry,
    days_ago,
    start_sidecar,
    stop_sidecar,
)

resource = pytest.importorskip("resource")
if not hasattr(resource, "prlimit"):
    pytest.skip("prlimit(2) is Linux only", allow_module_level=True)

TOOL = BASE_SETTINGS["tool"]
FLUSH_NOW = "dxTelemetry.flushNow"
#: what a user may read in the error: the problem named, not a stack trace
FULL = re.compile(r"(?i)file too large|no space left|disk (is )?full")
ANSWER_WITHIN = 5.0  # seconds: a refusal must come quickly, not after the 15 s request timeout


def set_fsize(pid: int, limit: int | None) -> None:
    """The soft limit on file size of a running process (None: back to its hard limit)."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def event(n: int, ago: int = 2) -> dict[str, Any]:
    return {
        "event_id": f"ev-{n}",
        "timestamp": days_ago(ago, n % 24, n % 60),
        "model": "model-x",
        "input_tokens": 1000 + n,
        "output_tokens": n,
        "cache_read_tokens": 7 * n,
        "spend_cents": 0.25 * (n % 5),
    }


async def record_or_refusal(client: Sidecar, e: dict[str, Any]) -> dict[str, Any] | str:
    """The answer, or the refusal's message; anything else (a crash, a hang) fails."""
    try:
        answer: dict[str, Any] = await asyncio.wait_for(client.record(**e), ANSWER_WITHIN)
    except JsonRpcInvalidParams as exc:
        raise AssertionError(f"a full disk is not the caller's mistake: {exc}") from None
    except JsonRpcException as exc:
        return str(exc)
    return answer


def expected_day(acked: list[dict[str, Any]], day: str) -> dict[str, Any]:
    return totals(e | {"tool": TOOL} for e in acked if e["timestamp"].startswith(day))


async def test_a_full_disk_refuses_events_clearly_keeps_the_rest_and_recovers(home: Path) -> None:
    day = date_ago(2)
    settings = {**BASE_SETTINGS, "flush": {"enabled": False, "delaySeconds": 0}}
    client = await start_sidecar(home, settings)
    try:
        acked: list[dict[str, Any]] = []
        for n in range(20):
            assert (await client.record(**event(n)))["recorded"]
            acked.append(event(n))

        # a little room above the day's ledger file: the index (larger already: its WAL)
        # cannot be written from now on, and the ledger fills up a few events later
        set_fsize(client.pid, (home / "ledger" / f"{day}.jsonl").stat().st_size + 2500)
        refusals: list[str] = []
        n = len(acked)
        while not refusals:
            assert n < 500, "never refused: is the file size limit in effect?"
            outcome = await record_or_refusal(client, event(n))
            if isinstance(outcome, str):
                refusals.append(outcome)
            else:
                assert outcome["recorded"] and not outcome["duplicate"], outcome
                acked.append(event(n))
            n += 1
        for extra in range(3):  # again and again: each refused at once, none half-recorded
            outcome = await record_or_refusal(client, event(n + extra))
            assert isinstance(outcome, str), outcome
            refusals.append(outcome)
        print(f"{len(acked)} events acknowledged, then refused: {refusals[0]}", file=sys.stderr)
        for message in refusals:
            assert FULL.search(message) and "not recorded" in message, message
        assert client.process.returncode is None

        # what was recorded is intact, and the user still sees it
        status = await asyncio.wait_for(client.status(), ANSWER_WITHIN)
        assert day_entry(status, day, TOOL)["totals"] == expected_day(acked, day)  # type: ignore[index]
        ledger = read_ledger(home)
        assert {e["event_id"] for e in acked} <= {line["event_id"] for line in ledger.usage}

        set_fsize(client.pid, None)  # space returns: no restart
        for extra in range(3):
            e = event(n + 10 + extra)
            outcome = await record_or_refusal(client, e)
            assert isinstance(outcome, dict) and outcome["recorded"], outcome
            assert outcome["duplicate"] is False  # a refused event left nothing behind
            acked.append(e)
        status = await asyncio.wait_for(client.status(), ANSWER_WITHIN)
        assert day_entry(status, day, TOOL)["totals"] == expected_day(acked, day)  # type: ignore[index]
    finally:
        await stop_sidecar(client)

    # every line whole, and exactly the acknowledged events: a refused one left no trace
    ledger = read_ledger(home)
    assert ledger.problems == []
    assert sorted(line["event_id"] for line in ledger.usage) == sorted(e["event_id"] for e in acked)
    report = await asyncio.to_thread(cli_json, home, "report", "--json")
    assert day_entry(report, day, TOOL)["totals"] == expected_day(acked, day)  # type: ignore[index]


async def test_a_full_disk_while_pushing_never_sends_a_day_twice(home: Path, dx: FakeDx) -> None:
    settings = {**BASE_SETTINGS, "instanceUrl": dx.url, "flush": {"enabled": False}}
    client = await start_sidecar(home, settings)
    try:
        assert (await client.record(**event(0, ago=6)))["recorded"]
        first = await client.command(FLUSH_NOW)
        assert [p["date"] for p in first["pushed"]] == [date_ago(6)], first
        one_day = (home / "journal.jsonl").stat().st_size  # its `sending` and `pushed` lines
        for ago in (5, 4, 3, 2):
            assert (await client.record(**event(ago, ago=ago)))["recorded"]

        # room for one more day's two lines and a part of the next one's `sending`
        set_fsize(client.pid, int(one_day * 2.3))
        try:
            refused = await asyncio.wait_for(client.command(FLUSH_NOW), ANSWER_WITHIN)
        except JsonRpcException as exc:
            refused = str(exc)
        assert isinstance(refused, str) and FULL.search(refused), refused
        print(f"Flush Now with the journal full: {refused}", file=sys.stderr)
        status = await asyncio.wait_for(client.status(), ANSWER_WITHIN)
        states = {d["date"]: d["state"] for d in status["days"] if d["totals"]["events"]}
        assert "pending" in states.values(), states  # not pushed, and not lost either

        set_fsize(client.pid, None)
        again = await client.command(FLUSH_NOW)
        assert again["failed"] == [], again
        status = await client.status()
    finally:
        await stop_sidecar(client)

    sent = [(r.body["date"], r.body["tool"]) for r in dx.requests]
    assert len(sent) == len(set(sent)), f"a day sent twice: {sent}"
    stored = [(b["date"], b["tool"]) for b in dx.stored]
    for ago in (6, 5, 4, 3, 2):
        key = (date_ago(ago), TOOL)
        state = day_entry(status, *key)["state"]  # type: ignore[index]
        assert state in ("pushed", "unconfirmed"), (key, state)
        if state == "pushed":
            assert stored.count(key) == 1, key
    journal, torn = read_journal(home)
    assert torn == [] and len(journal) >= 2 * len(sent)  # no state half-written
