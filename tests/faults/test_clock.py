"""Fault injection: the wall clock jumps (a clock set back and forth across midnight, a machine
asleep for ten days) under real sidecars and CLI runs.

libfaketime (LD_PRELOAD) fakes the wall clock of the product's processes only, from an offset
the test rewrites; their monotonic clock stays real, as on a machine whose clock is set or that
sleeps (CLOCK_MONOTONIC does not count a suspend). The guarantees: no (date, tool) reaches DX
twice, today is never pushed, every complete day inside the backfill window with data is pushed
once, and days that fell out of the window are never pushed and show as `expired`.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.settings.days import complete_at
from tests.fake_dx import FakeDx, Script
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    day_entry,
    run_cli,
    sidecar,
    sidecar_env,
    state_of,
    until_async,
)

TOOL = "acme-ai"
FLUSH_NOW = "dxTelemetry.flushNow"
NOTHING: dict[str, list[Any]] = {
    "pushed": [],
    "failed": [],
    "pending": [],
    "unconfirmed": [],
    "expired": [],
}
#: a day far from the real one, so nothing can pass by accident on the real clock
D = date(2030, 3, 10)


def _libfaketime() -> str | None:
    # the multithreaded variant: the sidecar runs an I/O thread, a push thread and watchdog's
    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + glob.glob(
        "/usr/lib/faketime/libfaketimeMT.so.1"
    )
    return found[0] if found else None


LIBFAKETIME = _libfaketime()
pytestmark = pytest.mark.skipif(
    LIBFAKETIME is None,
    reason="libfaketime is not installed (Debian package `faketime`; `make pytest` installs it)",
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def rfc3339(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class FakeClock:
    """The product's wall clock: real time plus an offset that the test changes at will."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._changes: list[tuple[float, int]] = []  # (real time of the change, offset)
        self.set(at(D, 12))

    def set(self, when: datetime) -> None:
        real = time.time()
        offset = round(when.timestamp() - real)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset:+d}\n")
        os.replace(tmp, self.path)  # a process reading it at every call never sees half of it
        self._changes.append((real, offset))

    def fake_at(self, real: float) -> datetime:
        """The product's time at the test's `time.time()` value `real`."""
        offset = next(o for t, o in reversed(self._changes) if t <= real)
        return datetime.fromtimestamp(real + offset, timezone.utc)

    def now(self) -> datetime:
        return self.fake_at(time.time())

    def env(self) -> dict[str, str]:
        assert LIBFAKETIME is not None
        return {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",  # read the offset at every call: a jump shows at once
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # monotonic stays real, as on a real machine
            "DONT_FAKE_MONOTONIC": "1",  # the same, as libfaketime before 0.9.9 spells it
            "TZ": "UTC",
        }


@pytest.fixture
def clock(tmp_path: Path) -> Iterator[FakeClock]:
    fake = FakeClock(tmp_path / "faketime")
    # Python itself must see the fake time (wall) and the real one (monotonic), or the test
    # proves nothing
    probe = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time(), time.monotonic())"],
        env={**os.environ, **fake.env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    wall, mono = (float(x) for x in probe.stdout.split())
    assert abs(wall - fake.now().timestamp()) < 5, (wall, fake.now())
    assert abs(mono - time.monotonic()) < 5, "the monotonic clock must stay real"
    yield fake


def dx_settings(dx: FakeDx, **extra: Any) -> dict[str, Any]:
    """The background push on, without its random delay."""
    return {**BASE_SETTINGS, "instanceUrl": dx.url, **extra}


def start(
    home: Path, clock: FakeClock, settings: dict[str, Any]
) -> AbstractAsyncContextManager[Sidecar]:
    """A sidecar on the fake clock."""
    return sidecar(home, settings, env=sidecar_env(home, **clock.env()))


async def state(client: Sidecar, day: date) -> str | None:
    return state_of(await client.status(), day.isoformat())


async def until_state(client: Sidecar, day: date, want: str) -> None:
    async def reached() -> bool:
        return await state(client, day) == want

    await until_async(reached, what=f"{day} to be {want}")


def assert_dx_saw_each_complete_day_once(dx: FakeDx, clock: FakeClock) -> None:
    """Each (date, tool) stored once, and every request for a day that was complete then (by
    the product's clock when DX received it): today is never pushed."""
    keys = dx.stored_keys()
    assert len(keys) == len(set(keys)), keys
    for request in dx.requests:
        day = date.fromisoformat(request.body["date"])
        received = clock.fake_at(time.time() - (time.monotonic() - request.at))
        assert received >= complete_at(day, "utc"), f"{day} pushed at {received}, before it ended"


async def test_a_clock_jumping_back_and_forth_across_midnight(
    home: Path, dx: FakeDx, clock: FakeClock
) -> None:
    clock.set(at(D, 23, 50))
    async with start(home, clock, dx_settings(dx)) as client:
        status = await client.status()
        assert status["today"]["date"] == D.isoformat()  # the sidecar lives on the fake clock
        for n, ts in ((2, at(D - timedelta(days=2), 10)), (1, at(D - timedelta(days=1), 10))):
            await client.record(event_id=f"past-{n}", timestamp=rfc3339(ts), input_tokens=n)
        await client.record(event_id="today", timestamp=rfc3339(at(D, 23, 40)), input_tokens=5)
        for n in (2, 1):
            await until_state(client, D - timedelta(days=n), "pushed")
        assert await client.command(FLUSH_NOW) == NOTHING  # today is not complete
        assert await state(client, D) == "open"

        # past midnight and the 10 minutes of grace: D is complete, and pushed once. Nothing
        # is recorded on D+1: the sidecar runs on it, so it is an inactive day to push
        clock.set(at(D + timedelta(days=1), 0, 15))
        await until_state(client, D, "pushed")

        # back before midnight: D is "today" again; an event for it is late, never pushed
        clock.set(at(D, 23, 55))
        await until_async(
            lambda: _today_is(client, D), what="the sidecar to see the clock set back"
        )
        await client.record(event_id="late", timestamp=rfc3339(at(D, 23, 54)), input_tokens=9)
        assert await client.command(FLUSH_NOW) == NOTHING  # D+1 lies in the future now

        # forward again: D+1 is today (not pushed), D was pushed already
        clock.set(at(D + timedelta(days=1), 0, 20))
        await until_async(
            lambda: _today_is(client, D + timedelta(days=1)), what="the clock set forward again"
        )
        assert await client.command(FLUSH_NOW) == NOTHING
        assert await state(client, D) == "pushed"

        # and on: D+1 completes, and is pushed once, as a day the sidecar ran without usage
        clock.set(at(D + timedelta(days=2), 0, 15))
        await until_state(client, D + timedelta(days=1), "pushed")
        assert await client.command(FLUSH_NOW) == NOTHING

    assert sorted(dx.stored_keys()) == [
        ("dev@example.com", (D + timedelta(days=n)).isoformat(), TOOL) for n in (-2, -1, 0, 1)
    ]
    by_day = {r["date"]: (r["is_active"], r["input_tokens"]) for r in dx.stored}
    assert by_day[D.isoformat()] == (True, 5)  # the late event stayed out
    assert by_day[(D + timedelta(days=1)).isoformat()] == (False, 0)
    assert len(dx.requests) == 4
    assert_dx_saw_each_complete_day_once(dx, clock)


async def _today_is(client: Sidecar, day: date) -> bool:
    return bool((await client.status())["today"]["date"] == day.isoformat())


async def test_a_machine_asleep_for_ten_days(home: Path, dx: FakeDx, clock: FakeClock) -> None:
    """Before the sleep DX was down (503, retry in an hour), so no day was pushed. After ten
    days, the window (14 days) still holds D-2..D: each is pushed once; D-7 and D-6 fell out:
    never pushed, and `expired` in the report."""
    clock.set(at(D, 12))
    settings = dx_settings(dx, flush={"enabled": True, "delaySeconds": 0, "backfillDays": 14})
    dx.then(Script(kind="status", status=503, headers={"Retry-After": "3600"}))
    days = [D - timedelta(days=n) for n in (7, 6, 2, 1, 0)]
    async with start(home, clock, settings) as client:
        for i, day in enumerate(days):
            ts = at(day, 11) if day == D else at(day, 10)
            await client.record(event_id=f"e{i}", timestamp=rfc3339(ts), input_tokens=10 + i)
        await until_async(
            lambda: _has_retry_at(client, days[0]), what="DX's 503 and the retry it asked for"
        )
        assert dx.stored == [] and len(dx.requests) == 1

        clock.set(at(D + timedelta(days=10), 9))  # the lid opens ten days later
        for day in days[2:]:
            await until_state(client, day, "pushed")
        assert await client.command(FLUSH_NOW) == NOTHING
        status = await client.status()
        today = D + timedelta(days=10)
        assert status["today"]["date"] == today.isoformat()
        assert state_of(status, today.isoformat()) == "open"  # the sidecar runs today: marked
        assert day_entry(status, days[0].isoformat()) is None  # out of the window

    assert sorted(dx.stored_keys()) == sorted(
        ("dev@example.com", d.isoformat(), TOOL) for d in days[2:]
    )
    assert_dx_saw_each_complete_day_once(dx, clock)
    assert [r.body["date"] for r in dx.requests].count(days[0].isoformat()) == 1  # the 503

    done = run_cli(home, "report", "--days", "20", "--json", **clock.env())
    assert done.returncode == 0, done.stderr
    states = {(d["date"], d["tool"]): d["state"] for d in json.loads(done.stdout)["days"]}
    for day in days[2:]:
        assert states[(day.isoformat(), TOOL)] == "pushed"
    # README.md's day states: outside the window and never pushed
    assert [states[(d.isoformat(), TOOL)] for d in days[:2]] == ["expired", "expired"], states


async def _has_retry_at(client: Sidecar, day: date) -> bool:
    entry = day_entry(await client.status(), day.isoformat())
    return entry is not None and "retryAt" in entry
