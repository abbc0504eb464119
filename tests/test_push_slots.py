"""When a fleet's machines push: each email's slot, and Retry-After with jitter.

Real sidecars over real stdio, a real HTTP server on 127.0.0.1 playing DX. The slot period
is a few seconds here (`flush.delaySeconds`; an hour by default) so the tests wait seconds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.push.schedule import slot_offset
from dx_lsp_telemetry.settings.days import parse_ts
from tests.fake_dx import FakeDx, Received, Script
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    date_ago,
    day_entry,
    days_ago,
    run_cli,
    sidecar,
    until,
    until_async,
)

PERIOD = 8
#: two emails whose slots are far apart in a period of PERIOD seconds (checked below)
EMAILS = ("ana@example.com", "di@example.com")
#: a slot's cycle reaches DX within this (a push cycle, on a machine busy with other tests)
LATE = 2.0


def settings(dx: FakeDx, email: str, period: int) -> dict[str, Any]:
    return {
        **BASE_SETTINGS,
        "email": email,
        "instanceUrl": dx.url,
        "flush": {"enabled": True, "delaySeconds": period},
    }


def wall_time(received: Received) -> float:
    """The wall-clock time at which FakeDx read the request (it notes the monotonic one)."""
    return time.time() - (time.monotonic() - received.at)


def after_slot(received: Received, email: str) -> float:
    """How long after the last instant of `email`'s slot the request arrived."""
    return (wall_time(received) - slot_offset(email, PERIOD)) % PERIOD


def pushes_of(dx: FakeDx, email: str) -> list[Received]:
    return [r for r in dx.requests if isinstance(r.body, dict) and r.body["email"] == email]


async def keep_recording(client: Sidecar, until_pushed: Any) -> int:
    """Record today's events every 0.2 s until `until_pushed()`: each changes the status while
    a complete day waits, and so asks the schedule for a cycle."""
    count = 0
    deadline = time.monotonic() + PERIOD + 10
    while not until_pushed():
        assert time.monotonic() < deadline, "no push within a period"
        await client.record(input_tokens=1)
        count += 1
        await asyncio.sleep(0.2)
    return count


async def test_each_email_pushes_at_its_own_slot_however_often_a_cycle_is_asked_for(
    tmp_path: Path, dx: FakeDx
) -> None:
    offsets = [slot_offset(e, PERIOD) for e in EMAILS]
    assert abs(offsets[0] - offsets[1]) > 2.5, offsets  # the test tells them apart
    d2 = date_ago(2)

    async def machine(email: str) -> tuple[float, int]:
        home = tmp_path / email
        # start just after this email's slot, so a whole period of asking comes before the next
        # (started just before it, a machine pushed after two asks, too few to prove the point)
        await asyncio.sleep((slot_offset(email, PERIOD) - time.time()) % PERIOD + 0.1)
        async with sidecar(home, settings(dx, email, PERIOD)) as client:
            started = time.time()
            await client.record(timestamp=days_ago(2), input_tokens=20)  # complete, waiting
            asked = await keep_recording(client, lambda: pushes_of(dx, email))
            assert "background pushes at this email's slot" in "\n".join(client.stderr_lines)
        (push,) = pushes_of(dx, email)
        assert push.body["date"] == d2
        # the first slot after start-up, not before it, however many cycles were asked for
        assert after_slot(push, email) < LATE, (email, after_slot(push, email))
        assert wall_time(push) - started < PERIOD + LATE
        return after_slot(push, email), asked

    results = await asyncio.gather(*(machine(e) for e in EMAILS))
    assert all(asked >= 3 for _, asked in results), results


async def test_the_slot_is_the_same_after_a_restart(tmp_path: Path, dx: FakeDx) -> None:
    email = EMAILS[0]
    home = tmp_path / "home"
    for n in (2, 3):
        done = run_cli(
            home,
            "record",
            "--tool",
            "acme-ai",
            "--timestamp",
            days_ago(n),
            "--input-tokens",
            str(n),
        )
        assert done.returncode == 0, done.stderr
        async with sidecar(home, settings(dx, email, PERIOD)):
            await until(lambda n=n: len(pushes_of(dx, email)) == n - 1, PERIOD + 5, "a push")
    first, second = pushes_of(dx, email)
    assert (first.body["date"], second.body["date"]) == (date_ago(2), date_ago(3))
    for push in (first, second):
        assert after_slot(push, email) < LATE, after_slot(push, email)


async def test_retry_after_is_honoured_with_a_jitter_that_sets_machines_apart(
    tmp_path: Path, dx: FakeDx
) -> None:
    """Two machines throttled with the same Retry-After wait it out, each plus its own random
    part of the first backoff (at most 60 s), so they do not come back together."""
    wait = 30
    throttled = Script(kind="status", status=429, headers={"Retry-After": str(wait)})
    dx.then(throttled, throttled)
    d2 = date_ago(2)
    extras = []
    async with (
        sidecar(tmp_path / "a", settings(dx, EMAILS[0], 0)) as a,
        sidecar(tmp_path / "b", settings(dx, EMAILS[1], 0)) as b,
    ):
        for client, email in ((a, EMAILS[0]), (b, EMAILS[1])):
            await client.record(timestamp=days_ago(2), input_tokens=20)

            async def waiting(client: Sidecar = client) -> dict[str, Any] | None:
                entry = day_entry(await client.status(), d2)
                return entry if entry and "retryAt" in entry else None

            entry = await until_async(waiting, what=f"{email}: {d2} waiting to retry")
            (push,) = pushes_of(dx, email)
            assert push.answered == 429 and push.answered_at is not None
            answered = time.time() - (time.monotonic() - push.answered_at)
            extra = parse_ts(entry["retryAt"]).timestamp() - answered - wait
            assert -0.5 <= extra <= 60.5, (email, extra)
            extras.append(extra)
        assert len(dx.requests) == 2  # neither sent again inside Retry-After
    assert abs(extras[0] - extras[1]) > 0.001, extras
