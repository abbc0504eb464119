"""`Pusher`: one push cycle under the push lock, against a real HTTP server and a real data dir.

Time is explicit: every pusher gets a settable clock fixed at `NOW`, so "complete", "the
window" and `retryAt` never depend on when the tests run. Events are written by the real
recorder into the real ledger; the journal is read back from disk.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import httpx
import pytest
from filelock import FileLock

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.ledger.recorder import record_event
from dx_lsp_telemetry.push.config import journal_destination
from dx_lsp_telemetry.push.dx import PUSH_PATH, DxClient
from dx_lsp_telemetry.push.journal import Journal, JournalEntry
from dx_lsp_telemetry.push.pusher import (
    ConfigurationError,
    CycleReport,
    NotAllowed,
    PushBusy,
    Pusher,
)
from dx_lsp_telemetry.push.status import StatusInputs, build_status
from dx_lsp_telemetry.record.events import EventRules, validate_event
from dx_lsp_telemetry.record.summary import record_hash
from dx_lsp_telemetry.settings.days import format_ts
from dx_lsp_telemetry.settings.settings import Settings, parse_settings
from tests.fake_dx import FakeDx, Script
from tests.harness import TEST_TOKEN

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
EMAIL = "dev@example.com"
TOOL = "acme-ai"
QUICK = httpx.Timeout(5.0)
ZERO_TOTALS = {
    "events": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_write_tokens": 0,
    "cache_read_tokens": 0,
    "spend_cents": 0.0,
}


def day(n: int) -> str:
    """The date `n` days before `NOW`, as text."""
    return (NOW.date() - timedelta(days=n)).isoformat()


def ts(n: int, hour: int = 12, minute: int = 0) -> datetime:
    d = NOW.date() - timedelta(days=n)
    return datetime.combine(d, clock_time(hour, minute), tzinfo=timezone.utc)


def dx_record(
    n: int,
    tool: str = TOOL,
    *,
    events: int = 1,
    email: str = EMAIL,
    metrics: dict[str, Any] | None = None,
    spend_cents: int = 0,
    **tokens: int,
) -> dict[str, Any]:
    """The `aiToolMetrics.push` body expected for day `n`."""
    return {
        "email": email,
        "date": day(n),
        "is_active": events > 0,
        "tool": tool,
        "metrics": {"events": events, **(metrics or {})},
        "input_tokens": tokens.get("input_tokens", 0),
        "output_tokens": tokens.get("output_tokens", 0),
        "cache_write_tokens": tokens.get("cache_write_tokens", 0),
        "cache_read_tokens": tokens.get("cache_read_tokens", 0),
        "spend_cents": spend_cents,
    }


def empty(report: CycleReport) -> bool:
    return report.to_json() == {
        "pushed": [],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> None:
    """Poll `predicate` until truthy; fail at the deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class World:
    """A data dir, a clock, the settings and a token, and one long-lived pusher."""

    def __init__(self, home: Path, dx: FakeDx) -> None:
        self.paths = DataPaths(home)
        self.dx = dx
        self.clock = Clock(NOW)
        self.jitter = 1.0
        self.timeout = QUICK
        self.token: str | None = TEST_TOKEN
        self.settings = settings_for(dx.url)
        self.writer = LedgerWriter(self.paths.ledger_dir)
        self.index = LedgerIndex(self.paths.ledger_dir)
        self.pusher = self.new_pusher()

    def new_pusher(self) -> Pusher:
        return Pusher(
            self.paths,
            clock=self.clock,
            jitter=lambda: self.jitter,
            client_factory=lambda url, tok: DxClient(url, tok, timeout=self.timeout),
        )

    def record(self, n: int, hour: int = 12, minute: int = 0, **fields: Any) -> None:
        """Record one usage event on day `n` through the real recorder (rules allow 30 days)."""
        rules = EventRules(self.settings.tool, self.clock(), "utc", 30)
        raw = {"timestamp": format_ts(ts(n, hour, minute)), **fields}
        record_event(self.writer, self.index, validate_event(raw, rules), "utc")

    def cycle(self, *, manual: bool = False) -> CycleReport:
        return self.pusher.cycle(self.settings, self.token, manual=manual)

    def resend(self, n: int, tool: str = TOOL) -> CycleReport:
        return self.pusher.resend(self.settings, self.token, date.fromisoformat(day(n)), tool)

    def mark_pushed(self, n: int, tool: str = TOOL) -> dict[str, str]:
        return self.pusher.mark_pushed(self.settings, self.token, date.fromisoformat(day(n)), tool)

    def entry(
        self, n: int, tool: str = TOOL, settings: Settings | None = None
    ) -> JournalEntry | None:
        s = settings or self.settings
        journal = Journal(self.paths.journal_file)
        journal.load()
        return journal.get((journal_destination(s), s.email, day(n), tool))

    def history(self, n: int, tool: str = TOOL) -> list[dict[str, Any]]:
        """Every journal line of day `n`, in order, as written."""
        if not self.paths.journal_file.exists():
            return []
        lines = [json.loads(x) for x in self.paths.journal_file.read_text().splitlines() if x]
        return [x for x in lines if x["date"] == day(n) and x["tool"] == tool]

    def states(self, n: int, tool: str = TOOL) -> list[str]:
        return [x["state"] for x in self.history(n, tool)]

    def status(self) -> dict[str, Any]:
        inputs = StatusInputs(self.paths.home, True, self.settings, [], self.token, self.clock())
        return build_status(
            inputs, LedgerIndex(self.paths.ledger_dir), Journal(self.paths.journal_file)
        )

    def day_status(self, n: int, tool: str = TOOL) -> dict[str, Any] | None:
        return next(
            (d for d in self.status()["days"] if d["date"] == day(n) and d["tool"] == tool), None
        )

    def sent_dates(self) -> list[str]:
        return [r.body["date"] for r in self.dx.requests if r.body is not None]


def settings_for(instance_url: str, **raw: Any) -> Settings:
    section = {
        "email": EMAIL,
        "tool": TOOL,
        "instanceUrl": instance_url,
        "flush": {"enabled": True, "delaySeconds": 0},
        **raw,
    }
    parsed = parse_settings(section, env={})
    assert parsed.problems == []
    return parsed.settings


@pytest.fixture
def world(home: Path, dx: FakeDx) -> World:
    return World(home, dx)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by nobody listening on it: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# -- success ---------------------------------------------------------------------------------


def test_a_success_is_journaled_pushed_with_the_id_dx_returned(world: World) -> None:
    world.record(2, input_tokens=10)
    world.dx.then(Script(kind="status", status=200, body={"ok": True, "id": "dx-rec-42"}))
    report = world.cycle()
    assert report.to_json() == {
        "pushed": [{"date": day(2), "tool": TOOL, "destination": "dx"}],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }
    entry = world.entry(2)
    assert entry is not None
    assert (entry.state, entry.dx_id, entry.at) == ("pushed", "dx-rec-42", format_ts(NOW))
    assert entry.error is None and entry.retry_at is None


def test_sending_with_the_record_is_journaled_before_the_post_then_pushed(world: World) -> None:
    world.record(2, event_id="a", input_tokens=100, output_tokens=5, spend_cents=0.25)
    world.record(2, event_id="b", cache_read_tokens=7, cache_write_tokens=3, spend_cents=0.25)
    world.cycle()
    expected = dx_record(
        2,
        events=2,
        input_tokens=100,
        output_tokens=5,
        cache_write_tokens=3,
        cache_read_tokens=7,
        spend_cents=1,
    )
    assert world.dx.stored == [expected]
    sending, pushed = world.history(2)
    assert sending["state"] == "sending" and sending["record"] == expected
    assert pushed["state"] == "pushed" and "record" not in pushed
    assert pushed["record_hash"] == sending["record_hash"] == record_hash(expected)
    assert len(pushed["dx_id"]) == 36  # the id the fake DX generated


def test_the_record_is_the_exact_sum_of_the_distinct_events(world: World) -> None:
    world.record(2, event_id="x", input_tokens=10, metrics={"lines_accepted": 3})
    # the same event again with a larger total replaces it, never counts twice
    world.record(2, event_id="x", input_tokens=40, metrics={"lines_accepted": 4})
    world.record(2, event_id="x", input_tokens=5)  # a smaller version loses
    world.record(2, event_id="y", output_tokens=2, metrics={"lines_accepted": 0.5, "edits": 2})
    world.record(2, event_id="z", tool="other-ai", input_tokens=1)
    world.cycle()
    assert world.dx.stored == [
        dx_record(
            2,
            events=2,
            input_tokens=40,
            output_tokens=2,
            metrics={"edits": 2, "lines_accepted": 4.5},
        ),
        dx_record(2, "other-ai", input_tokens=1),
    ]


# -- rejected --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        Script(kind="ok_false", body={"ok": False, "error": "invalid_arguments", "message": "M"}),
        Script(kind="status", status=400, body={"ok": False, "error": "bad", "message": "M"}),
        Script(kind="status", status=422, body={"ok": False, "error": "invalid", "message": "M"}),
    ],
    ids=["200-ok-false", "400", "422"],
)
def test_a_rejected_record_fails_with_dx_error_and_the_cycle_goes_on(
    world: World, script: Script
) -> None:
    world.record(3, input_tokens=1)
    world.record(2, input_tokens=2)
    world.dx.then(script)
    report = world.cycle()
    entry = world.entry(3)
    assert entry is not None
    assert (entry.state, entry.kind) == ("failed", "rejected")
    assert entry.error and "M" in entry.error and str(script.body["error"]) in entry.error
    assert entry.record_hash == record_hash(dx_record(3, input_tokens=1))
    assert report.failed == [{"date": day(3), "tool": TOOL, "error": entry.error}]
    # a rejection is about that record only: the next day is still pushed
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(2, input_tokens=2)]
    assert world.pusher.paused_for is None
    status = world.day_status(3)
    assert status is not None and status["state"] == "failed" and status["error"] == entry.error


def test_a_rejected_day_is_tried_again_only_when_its_record_changes(world: World) -> None:
    world.record(2, event_id="a", input_tokens=1)
    world.dx.then(Script(kind="status", status=422))
    world.cycle()
    assert world.sent_dates() == [day(2)]
    for manual in (False, True, False):
        world.clock.advance(hours=3)
        assert empty(world.cycle(manual=manual))
    assert len(world.dx.requests) == 1  # the same record is never sent again
    world.record(2, event_id="b", input_tokens=2)  # the day's record changes
    report = world.cycle()
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(2, events=2, input_tokens=3)]
    assert len(world.dx.requests) == 2


# -- credentials, wrong URL: pause -----------------------------------------------------------


def test_a_401_fails_the_day_and_pauses_background_cycles_until_the_token_changes(
    world: World,
) -> None:
    world.record(3, input_tokens=3)
    world.record(2, input_tokens=2)
    world.token = "revoked-token"
    report = world.cycle()
    entry = world.entry(3)
    assert entry is not None and (entry.state, entry.kind) == ("failed", "credentials")
    assert entry.error and "401" in entry.error and "revoked-token" not in entry.error
    assert report.failed == [{"date": day(3), "tool": TOOL, "error": entry.error}]
    assert report.stopped_early and world.entry(2) is None  # later days wait
    assert world.pusher.paused_for is not None
    assert world.pusher.pause_reason == entry.error

    world.clock.advance(hours=5)
    assert empty(world.cycle())  # background: paused
    assert len(world.dx.requests) == 1

    report = world.cycle(manual=True)  # a manual cycle still tries
    assert len(world.dx.requests) == 2 and report.failed and not report.pushed

    world.token = TEST_TOKEN  # a new token: the pause ends, the failed day is tried again
    report = world.cycle()
    assert report.pushed == [
        {"date": day(3), "tool": TOOL, "destination": "dx"},
        {"date": day(2), "tool": TOOL, "destination": "dx"},
    ]
    assert world.dx.stored == [dx_record(3, input_tokens=3), dx_record(2, input_tokens=2)]
    assert world.pusher.paused_for is None


def test_a_403_pauses_background_cycles_and_a_manual_success_lifts_the_pause(
    world: World,
) -> None:
    world.record(3)
    world.record(2)
    body = {"ok": False, "error": "forbidden", "message": "scope missing"}
    world.dx.then(Script(kind="status", status=403, body=body))
    world.cycle()
    entry = world.entry(3)
    assert entry is not None and (entry.state, entry.kind) == ("failed", "credentials")
    assert entry.error and "403" in entry.error and "scope missing" in entry.error
    assert empty(world.cycle())
    assert len(world.dx.requests) == 1
    report = world.cycle(manual=True)
    assert [p["date"] for p in report.pushed] == [day(3), day(2)]
    assert world.pusher.paused_for is None
    world.record(1)
    assert [p["date"] for p in world.cycle().pushed] == [day(1)]  # background runs again


def test_an_email_change_ends_a_credentials_pause(world: World) -> None:
    world.record(2)
    world.dx.then(Script(kind="status", status=401))
    world.cycle()
    assert world.pusher.paused_for is not None
    assert empty(world.cycle())
    world.settings = replace(world.settings, email="other@example.com")
    report = world.cycle()
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(2, email="other@example.com")]


def test_a_404_pauses_until_the_instance_url_changes(world: World) -> None:
    world.record(3)
    world.record(2)
    wrong = settings_for(world.dx.url + "/not-dx")
    world.settings = wrong
    report = world.cycle()
    entry = world.entry(3)
    assert entry is not None and (entry.state, entry.kind) == ("failed", "not_found")
    assert entry.error and "404" in entry.error
    assert report.stopped_early and world.entry(2) is None
    assert empty(world.cycle())
    assert len(world.dx.requests) == 1
    world.cycle(manual=True)  # a manual cycle still tries
    assert len(world.dx.requests) == 2
    world.settings = settings_for(world.dx.url)
    report = world.cycle()
    assert [p["date"] for p in report.pushed] == [day(3), day(2)]
    assert world.dx.stored == [dx_record(3), dx_record(2)]
    failed = world.entry(3, settings=wrong)
    assert failed is not None and failed.state == "failed"  # the old URL's history stays


def test_a_redirect_is_not_followed_and_fails_as_not_found(world: World) -> None:
    world.record(2)
    location = world.dx.url + PUSH_PATH
    world.dx.then(Script(kind="status", status=308, headers={"Location": location}))
    world.cycle()
    entry = world.entry(2)
    assert entry is not None and (entry.state, entry.kind) == ("failed", "not_found")
    assert entry.error and location in entry.error
    assert world.dx.stored == [] and len(world.dx.requests) == 1
    assert world.pusher.paused_for is not None


# -- never reached, throttled: pending, backoff ----------------------------------------------


def test_connection_refused_leaves_the_day_pending_and_later_days_wait(
    world: World, closed_port: int
) -> None:
    world.settings = settings_for(f"http://127.0.0.1:{closed_port}")
    world.record(4)
    world.record(3)
    report = world.cycle()
    entry = world.entry(4)
    assert entry is not None and entry.state == "pending"
    assert entry.error and "could not reach DX" in entry.error
    assert entry.attempts == 1
    assert entry.retry_at == format_ts(NOW + timedelta(seconds=60))
    # `pending` in the cycle's report as in status: DX refused nothing, it was not reached
    assert report.pending == [
        {"date": day(4), "tool": TOOL, "error": entry.error, "retryAt": entry.retry_at}
    ]
    assert report.failed == [] and not report.ok
    assert report.stopped_early
    assert world.entry(3) is None  # never tried: the cycle stopped
    assert world.pusher.next_retry(world.settings, world.token) == NOW + timedelta(seconds=60)
    status = world.day_status(4)
    assert status is not None
    assert (status["state"], status["retryAt"], status["error"]) == (
        "pending",
        entry.retry_at,
        entry.error,
    )
    assert world.pusher.paused_for is None  # not a reason to pause


def test_backoff_doubles_per_attempt_capped_at_an_hour_and_waits_for_retry_at(
    world: World,
) -> None:
    world.record(2)
    for attempt, delay in enumerate([60, 120, 240, 480, 960, 1920, 3600, 3600], 1):
        world.dx.then(Script(kind="status", status=503))
        report = world.cycle()
        assert len(world.dx.requests) == attempt and report.pending and not report.failed
        entry = world.entry(2)
        assert entry is not None and (entry.state, entry.attempts) == ("pending", attempt)
        assert entry.retry_time == world.clock() + timedelta(seconds=delay)
        # a background cycle before retryAt does not send it
        world.clock.now = entry.retry_time - timedelta(seconds=1)
        assert empty(world.cycle())
        assert len(world.dx.requests) == attempt
        world.clock.now = entry.retry_time
    report = world.cycle()
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(2)]


@pytest.mark.parametrize(("jitter", "first_delay"), [(0.0, 30.0), (0.5, 45.0), (1.0, 60.0)])
def test_the_backoff_jitter_scales_each_delay_between_half_and_full(
    world: World, jitter: float, first_delay: float
) -> None:
    world.jitter = jitter
    world.record(2)
    world.dx.then(Script(kind="status", status=503))
    world.cycle()
    entry = world.entry(2)
    assert entry is not None and entry.retry_time == NOW + timedelta(seconds=first_delay)
    assert world.pusher.backoff(12) == 3600 * (0.5 + 0.5 * jitter)


def test_the_backoff_stays_capped_after_any_number_of_attempts(world: World) -> None:
    """A day retried hourly for weeks (a long backfill window) must not overflow the delay."""
    assert world.pusher.backoff(5000) == 3600.0
    world.record(2)
    Journal(world.paths.journal_file).append(
        JournalEntry(
            destination=journal_destination(world.settings),
            email=EMAIL,
            date=day(2),
            tool=TOOL,
            state="pending",
            at=format_ts(NOW - timedelta(hours=1)),
            error="could not reach DX",
            retry_at=format_ts(NOW - timedelta(minutes=1)),
            attempts=1500,
        )
    )
    world.dx.then(Script(kind="status", status=503))
    world.cycle()
    entry = world.entry(2)
    assert entry is not None and (entry.state, entry.attempts) == ("pending", 1501)
    assert entry.retry_time == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [
        # Retry-After (at most an hour), plus jitter x the first backoff (1.0 x 60 s here)
        (429, "120", 180),
        (503, "120", 180),
        (503, "7200", 3660),
        (429, "Tue, 01 Jan 2999 00:00:00 GMT", 3660),
        (503, "nan", 60),  # unreadable: the backoff applies
        (429, "soon", 60),
    ],
)
def test_a_throttled_day_is_pending_until_dx_retry_after_capped_at_an_hour(
    world: World, status: int, retry_after: str, seconds: int
) -> None:
    world.record(3)
    world.record(2)
    world.dx.then(Script(kind="status", status=status, headers={"Retry-After": retry_after}))
    report = world.cycle()
    entry = world.entry(3)
    assert entry is not None and (entry.state, entry.attempts) == ("pending", 1)
    assert entry.error and f"HTTP {status}" in entry.error
    assert entry.retry_time == NOW + timedelta(seconds=seconds)
    assert report.stopped_early and world.entry(2) is None
    world.clock.now = NOW + timedelta(seconds=seconds)
    assert [p["date"] for p in world.cycle().pushed] == [day(3), day(2)]


def test_a_pending_day_waits_for_retry_at_in_background_but_not_when_manual(
    world: World,
) -> None:
    world.record(2)
    world.dx.then(Script(kind="status", status=429, headers={"Retry-After": "600"}))
    world.cycle()
    world.clock.advance(seconds=599)
    assert empty(world.cycle())
    assert len(world.dx.requests) == 1
    report = world.cycle(manual=True)
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert len(world.dx.requests) == 2
    assert world.dx.stored == [dx_record(2)]


def test_a_day_waiting_for_retry_after_holds_back_later_days_in_background(
    world: World,
) -> None:
    world.record(3)
    world.record(2)
    world.dx.then(Script(kind="status", status=429, headers={"Retry-After": "600"}))
    world.cycle()
    world.clock.advance(seconds=10)
    assert empty(world.cycle())  # day 2 must not reach DX inside DX's Retry-After window
    assert world.sent_dates() == [day(3)]
    world.clock.advance(seconds=600 + 60 - 10)  # Retry-After, plus the jitter (1.0 x 60 s)
    assert [p["date"] for p in world.cycle().pushed] == [day(3), day(2)]


@pytest.mark.parametrize(("jitter", "extra"), [(0.0, 0.0), (0.25, 15.0), (1.0, 60.0)])
def test_retry_after_is_honoured_plus_a_jitter_that_grows_with_each_attempt(
    world: World, jitter: float, extra: float
) -> None:
    """Machines DX throttled together read the same Retry-After: each adds a random part of
    the attempt's backoff (60 s, then 120 s, ...), so they do not all come back together."""
    world.jitter = jitter
    world.record(2)
    for attempt in (1, 2, 3):
        world.dx.then(Script(kind="status", status=429, headers={"Retry-After": "30"}))
        sent = world.clock()
        report = world.cycle()
        assert report.stopped_early
        entry = world.entry(2)
        assert entry is not None and entry.attempts == attempt
        assert entry.retry_time == sent + timedelta(seconds=30 + extra * 2 ** (attempt - 1))
        world.clock.now = entry.retry_time - timedelta(milliseconds=1)
        assert empty(world.cycle())  # never before its retryAt
        world.clock.now = entry.retry_time
    assert world.cycle().pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert len(world.dx.requests) == 4


def test_the_schedule_is_told_the_earliest_retry_it_has_not_tried(world: World) -> None:
    """A day that left the window stays `pending` with an old `retryAt`: it must not hide the
    `retryAt` of a day still waiting."""
    journal = Journal(world.paths.journal_file)
    for n, retry in ((30, NOW - timedelta(days=20)), (2, NOW + timedelta(minutes=7))):
        journal.append(
            JournalEntry(
                destination=journal_destination(world.settings),
                email=EMAIL,
                date=day(n),
                tool=TOOL,
                state="pending",
                at=format_ts(NOW - timedelta(minutes=1)),
                error="could not reach DX",
                retry_at=format_ts(retry),
                attempts=3,
            )
        )
    settings, token = world.settings, world.token
    assert world.pusher.next_retry(settings, token) == NOW - timedelta(days=20)
    tried = NOW - timedelta(hours=1)
    assert world.pusher.next_retry(settings, token, after=tried) == NOW + timedelta(minutes=7)
    assert world.pusher.next_retry(settings, token, after=NOW + timedelta(minutes=7)) is None


def test_after_a_transient_failure_the_waiting_days_follow_oldest_first(world: World) -> None:
    for n in (2, 4, 3):
        world.record(n)
    world.dx.then(Script(kind="status", status=503))
    world.cycle()
    assert world.sent_dates() == [day(4)]
    assert world.entry(3) is None and world.entry(2) is None
    world.clock.advance(hours=1)
    report = world.cycle()
    assert [p["date"] for p in report.pushed] == [day(4), day(3), day(2)]
    assert world.sent_dates() == [day(4), day(4), day(3), day(2)]


# -- ambiguous: unconfirmed, never re-sent ---------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        Script(kind="garbage"),
        Script(kind="status", status=500),
        Script(kind="status", status=502),
        Script(kind="status", status=504),
        Script(kind="reset"),
        Script(kind="slow", delay=3.0),
    ],
    ids=["unparseable", "500", "502", "504", "reset", "timeout"],
)
def test_an_ambiguous_outcome_is_unconfirmed_stops_the_cycle_and_is_never_resent(
    world: World, script: Script
) -> None:
    world.timeout = httpx.Timeout(0.3, connect=5.0)
    world.record(3)
    world.record(2)
    world.dx.then(script)
    report = world.cycle()
    assert report.unconfirmed == [{"date": day(3), "tool": TOOL}]
    assert report.stopped_early and report.pushed == [] and report.failed == []
    entry = world.entry(3)
    assert entry is not None and entry.state == "unconfirmed" and entry.error
    assert world.entry(2) is None  # DX looked unwell: the other days wait
    status = world.day_status(3)
    assert status is not None and (status["state"], status["error"]) == ("unconfirmed", entry.error)

    assert [p["date"] for p in world.cycle().pushed] == [day(2)]
    for manual in (False, True):
        world.clock.advance(days=1)
        assert empty(world.cycle(manual=manual))
    assert world.sent_dates() == [day(3), day(2)]  # day 3 was sent once, never again
    assert world.dx.stored == [dx_record(2)]


PUSH_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.push.pusher import Pusher
from dx_lsp_telemetry.settings.settings import parse_settings

home, url, now, token = sys.argv[1:5]
section = {"email": "dev@example.com", "tool": "acme-ai", "instanceUrl": url}
settings = parse_settings(section, env={}).settings
pusher = Pusher(DataPaths(Path(home)), clock=lambda: datetime.fromisoformat(now))
print(json.dumps(pusher.cycle(settings, token, manual=True).to_json()))
"""


def start_pusher_process(world: World) -> subprocess.Popen[str]:
    args = [str(world.paths.home), world.dx.url, NOW.isoformat(), TEST_TOKEN]
    return subprocess.Popen(
        [sys.executable, "-c", PUSH_SCRIPT, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_a_pusher_killed_mid_request_leaves_sending_which_the_next_holder_makes_unconfirmed(
    world: World,
) -> None:
    world.record(3, input_tokens=3)
    world.record(2, input_tokens=2)
    # DX stores the record, then takes long to answer: the pusher dies waiting
    world.dx.then(Script(kind="slow", delay=10.0, store=True))
    proc = start_pusher_process(world)
    try:
        wait_for(lambda: len(world.dx.stored) == 1, what="the first record to reach DX")
        # durable before the POST: the journal says `sending` while the request is in flight
        assert world.states(3) == ["sending"]
        assert world.history(3)[0]["record"] == dx_record(3, input_tokens=3)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    report = world.cycle()  # the next holder of the push lock
    entry = world.entry(3)
    assert entry is not None and entry.state == "unconfirmed"
    assert entry.error and "interrupted" in entry.error
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    for manual in (True, False):
        assert empty(world.cycle(manual=manual))
    assert world.sent_dates() == [day(3), day(2)]
    assert world.dx.stored == [dx_record(3, input_tokens=3), dx_record(2, input_tokens=2)]
    # the user decides: DX has it
    assert world.mark_pushed(3) == {"date": day(3), "tool": TOOL, "state": "pushed"}
    assert len(world.dx.requests) == 2


def test_a_sending_line_is_settled_by_mark_pushed_or_resend_too(world: World) -> None:
    """Whoever takes the push lock next settles it: here a user command, not a cycle."""
    world.record(2)
    world.record(3)
    for n in (2, 3):
        write_sending(world, n)
    world.mark_pushed(2)
    assert world.states(2) == ["sending", "unconfirmed", "pushed"]
    assert world.states(3) == ["sending", "unconfirmed"]
    report = world.resend(3)
    assert report.pushed == [{"date": day(3), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(3)]


def write_sending(world: World, n: int) -> None:
    """What a pusher that died mid-request leaves behind (as the kill -9 test shows)."""
    Journal(world.paths.journal_file).append(
        JournalEntry(
            destination=journal_destination(world.settings),
            email=EMAIL,
            date=day(n),
            tool=TOOL,
            state="sending",
            at=format_ts(NOW - timedelta(minutes=5)),
            record=dx_record(n),
        )
    )


def test_settle_interrupted_at_start_up_makes_sending_unconfirmed_without_a_cycle(
    world: World,
) -> None:
    world.record(2)
    write_sending(world, 2)
    with FileLock(world.paths.push_lock):
        world.new_pusher().settle_interrupted()  # another process pushes: left to it
        assert world.states(2) == ["sending"]
    world.new_pusher().settle_interrupted()
    assert world.states(2) == ["sending", "unconfirmed"]
    status = world.day_status(2)
    assert (
        status is not None and status["state"] == "unconfirmed" and "interrupted" in status["error"]
    )
    assert world.dx.requests == []


# -- the user's decisions: resend, mark pushed -----------------------------------------------


def test_resend_sends_an_unconfirmed_day_once_more(world: World) -> None:
    world.record(2)
    world.dx.then(Script(kind="reset", store=True))
    world.cycle()
    assert world.states(2) == ["sending", "unconfirmed"]
    report = world.resend(2)
    assert report.to_json() == {
        "pushed": [{"date": day(2), "tool": TOOL, "destination": "dx"}],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }
    assert world.dx.stored == [dx_record(2), dx_record(2)]  # the user chose to send it again
    entry = world.entry(2)
    assert entry is not None and entry.state == "pushed" and entry.error is None


def test_resend_sends_a_rejected_day_even_when_its_record_is_unchanged(world: World) -> None:
    world.record(2)
    world.dx.then(Script(kind="status", status=422))
    world.cycle()
    assert empty(world.cycle(manual=True))
    report = world.resend(2)
    assert report.pushed == [{"date": day(2), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(2)]


def test_resend_reports_a_new_failure(world: World) -> None:
    world.record(2)
    world.dx.then(Script(kind="garbage"), Script(kind="status", status=502))
    world.cycle()
    report = world.resend(2)
    assert report.unconfirmed == [{"date": day(2), "tool": TOOL}]
    assert world.states(2) == ["sending", "unconfirmed", "sending", "unconfirmed"]


@pytest.mark.parametrize(
    ("situation", "message"),
    [
        ("pushed", r"already pushed \(pushed at .*never sent twice"),
        ("outbox", r"already pushed \(outbox at .*never sent twice"),
        ("marked", r"already pushed \(pushed at .*never sent twice"),
        ("today", r"is not complete yet"),
        ("in the future", r"is not complete yet"),
        ("another tool", r"has no record for tool 'other-ai'"),
    ],
)
def test_resend_refuses_what_must_not_be_sent(world: World, situation: str, message: str) -> None:
    n, tool = 2, TOOL
    world.record(2)
    if situation == "pushed":
        world.cycle()
    elif situation == "outbox":
        world.settings, world.token = settings_for(""), None
        world.cycle()
    elif situation == "marked":
        world.dx.then(Script(kind="status", status=500))
        world.cycle()
        world.mark_pushed(2)
    elif situation == "today":
        world.record(0)
        n = 0
    elif situation == "in the future":
        n = -1
    else:
        tool = "other-ai"
    before = len(world.dx.requests)
    states = world.states(n, tool)
    with pytest.raises(NotAllowed, match=message):
        world.resend(n, tool)
    assert len(world.dx.requests) == before
    assert world.states(n, tool) == states


def test_an_expired_day_is_pushed_only_when_the_user_asks(world: World) -> None:
    """Older than the window and never pushed: no cycle tries it, `flush --resend` does, once."""
    world.settings = replace(world.settings, backfill_days=3)
    world.record(5, input_tokens=7)
    assert world.cycle().expired == []  # a background cycle names nothing: nobody reads it
    assert world.cycle(manual=True).expired == [{"date": day(5), "tool": TOOL}]
    assert world.dx.requests == []
    expired = world.day_status(5)  # in status though outside the window
    assert expired is not None and expired["state"] == "expired"
    report = world.resend(5)
    assert report.pushed == [{"date": day(5), "tool": TOOL, "destination": "dx"}]
    assert world.dx.stored == [dx_record(5, input_tokens=7)]
    pushed = world.day_status(5)
    assert pushed is not None and pushed["state"] == "pushed"
    assert empty(world.cycle(manual=True))
    with pytest.raises(NotAllowed, match="never sent twice"):
        world.resend(5)
    assert len(world.dx.requests) == 1


def test_mark_pushed_records_an_unconfirmed_day_as_pushed_without_sending(world: World) -> None:
    world.record(2, input_tokens=9)
    world.dx.then(Script(kind="status", status=504, store=True))
    world.cycle()
    world.clock.advance(minutes=30)
    assert world.mark_pushed(2) == {"date": day(2), "tool": TOOL, "state": "pushed"}
    entry = world.entry(2)
    assert entry is not None
    assert (entry.state, entry.marked, entry.error, entry.at) == (
        "pushed",
        True,
        None,
        format_ts(NOW + timedelta(minutes=30)),
    )
    assert empty(world.cycle(manual=True))
    assert len(world.dx.requests) == 1
    status = world.day_status(2)
    assert status is not None and status["state"] == "pushed" and "error" not in status
    assert status["totals"]["input_tokens"] == 9


@pytest.mark.parametrize(
    ("situation", "state"),
    [
        ("never sent", "not pushed yet"),
        ("pushed", "pushed"),
        ("pending", "pending"),
        ("outbox", "outbox"),
    ],
)
def test_mark_pushed_refuses_a_day_that_is_not_unconfirmed(
    world: World, situation: str, state: str
) -> None:
    world.record(2)
    if situation == "pushed":
        world.cycle()
    elif situation == "pending":
        world.dx.then(Script(kind="status", status=503))
        world.cycle()
    elif situation == "outbox":
        world.settings, world.token = settings_for(""), None
        world.cycle()
    states = world.states(2)
    with pytest.raises(NotAllowed, match=f"is {state}: only an unconfirmed or failed day"):
        world.mark_pushed(2)
    assert world.states(2) == states


# -- which days: window, completeness, order -------------------------------------------------


def test_only_complete_days_inside_the_backfill_window_are_pushed_oldest_first(
    world: World,
) -> None:
    world.settings = replace(world.settings, backfill_days=3)
    for n in (0, 5, 1, 3, 4, 2):
        world.record(n, hour=11, input_tokens=n + 1)
    report = world.cycle(manual=True)
    assert [p["date"] for p in report.pushed] == [day(3), day(2), day(1)]
    assert world.dx.stored == [dx_record(n, input_tokens=n + 1) for n in (3, 2, 1)]
    world.clock.advance(hours=11)  # still today
    again = world.cycle(manual=True)  # the days outside the window are named, never tried
    assert again.expired == [{"date": day(n), "tool": TOOL} for n in (4, 5)]
    assert again.ok and empty(replace(again, expired=[]))
    assert world.entry(0) is None and world.entry(4) is None and world.entry(5) is None
    status = world.status()  # 14 days, though the window is shorter: the expired ones show
    assert [(d["date"], d["state"]) for d in status["days"]] == [
        (day(0), "open"),
        (day(1), "pushed"),
        (day(2), "pushed"),
        (day(3), "pushed"),
        (day(4), "expired"),
        (day(5), "expired"),
    ]


def test_a_day_is_complete_ten_minutes_after_it_ends(world: World) -> None:
    world.record(1, hour=23, minute=59)
    world.clock.now = datetime.combine(NOW.date(), clock_time(0, 9, 59), tzinfo=timezone.utc)
    assert empty(world.cycle(manual=True))
    assert world.dx.requests == []
    world.clock.advance(seconds=1)
    assert [p["date"] for p in world.cycle().pushed] == [day(1)]


def test_days_are_pushed_oldest_first_and_tools_in_name_order(world: World) -> None:
    world.record(2, tool="zeta-ai")
    world.record(2, tool="alpha-ai")
    world.record(5)
    world.record(3, tool="alpha-ai")
    world.cycle()
    assert world.dx.stored_keys() == [
        (EMAIL, day(5), TOOL),
        (EMAIL, day(3), "alpha-ai"),
        (EMAIL, day(2), "alpha-ai"),
        (EMAIL, day(2), "zeta-ai"),
    ]


def test_a_day_that_leaves_the_window_is_never_pushed(world: World) -> None:
    world.record(7)
    world.record(6)
    world.dx.then(Script(kind="status", status=503))
    world.cycle()
    world.clock.advance(days=1)  # day 7 is now 8 days old: outside the default window of 7
    report = world.cycle(manual=True)
    assert [p["date"] for p in report.pushed] == [day(6)]
    assert world.sent_dates() == [day(7), day(6)]


# -- the local outbox ------------------------------------------------------------------------


def test_without_an_instance_url_the_outbox_gets_the_exact_record_then_dx_gets_the_same(
    world: World,
) -> None:
    world.settings, world.token = settings_for(""), None
    world.record(3, input_tokens=30, spend_cents=1.5, metrics={"edits": 2})
    world.record(2, tool="team/ai tool", output_tokens=20)
    report = world.cycle()
    assert report.pushed == [
        {"date": day(3), "tool": TOOL, "destination": "outbox"},
        {"date": day(2), "tool": "team/ai tool", "destination": "outbox"},
    ]
    outbox = world.paths.home / "outbox"
    files = {
        day(3): outbox / f"{day(3)}__{TOOL}.json",
        day(2): outbox / f"{day(2)}__team_ai_tool.json",
    }
    assert sorted(p.name for p in outbox.iterdir()) == sorted(p.name for p in files.values())
    written = {d: json.loads(p.read_text(encoding="utf-8")) for d, p in files.items()}
    assert written == {
        day(3): dx_record(3, input_tokens=30, spend_cents=2, metrics={"edits": 2}),
        day(2): dx_record(2, "team/ai tool", output_tokens=20),
    }
    for n, tool in ((3, TOOL), (2, "team/ai tool")):
        entry = world.entry(n, tool)
        assert entry is not None and (entry.state, entry.destination) == ("outbox", "outbox")
        status = world.day_status(n, tool)
        assert status is not None and status["state"] == "outbox"
    assert empty(world.cycle(manual=True))  # written once
    assert world.dx.requests == []

    world.settings, world.token = settings_for(world.dx.url), TEST_TOKEN
    report = world.cycle()
    assert [p["destination"] for p in report.pushed] == ["dx", "dx"]
    assert world.dx.stored == [written[day(3)], written[day(2)]]
    assert world.states(3) == ["sending", "outbox", "sending", "pushed"]


# -- what a record holds ---------------------------------------------------------------------


def test_an_inactive_day_is_pushed_with_zeros_under_the_tool_setting(world: World) -> None:
    world.writer.append_marker(ts(2, 8))
    world.writer.append_marker(ts(2, 17))  # a second window the same day
    world.cycle()
    assert world.dx.stored == [dx_record(2, events=0)]
    assert world.dx.stored[0]["is_active"] is False
    status = world.day_status(2)
    assert status is not None and status["totals"] == ZERO_TOTALS


def test_inactive_days_are_not_pushed_when_report_inactive_days_is_off(world: World) -> None:
    world.settings = replace(world.settings, report_inactive_days=False)
    world.writer.append_marker(ts(2))
    assert empty(world.cycle(manual=True))
    assert world.dx.requests == [] and world.day_status(2) is None


def test_a_day_with_usage_is_not_also_reported_inactive(world: World) -> None:
    world.writer.append_marker(ts(2, 8))
    world.record(2, tool="other-ai", input_tokens=4)
    world.cycle()
    assert world.dx.stored == [dx_record(2, "other-ai", input_tokens=4)]


@pytest.mark.parametrize("breakdowns", [True, False])
def test_model_breakdowns_are_sent_only_when_enabled(world: World, breakdowns: bool) -> None:
    world.settings = replace(world.settings, model_breakdowns=breakdowns)
    world.record(2, model="large", input_tokens=100, spend_cents=0.3)
    world.record(2, model="large", input_tokens=50, output_tokens=5, spend_cents=0.3)
    world.record(2, model="small", cache_read_tokens=10, spend_cents=0.2)
    world.record(2, input_tokens=1)  # no model: in the totals only
    world.cycle()
    expected = dx_record(
        2, events=4, input_tokens=151, output_tokens=5, cache_read_tokens=10, spend_cents=1
    )
    if breakdowns:
        expected["model_breakdowns"] = [
            {
                "model": "large",
                "input_tokens": 150,
                "output_tokens": 5,
                "cache_write_tokens": 0,
                "cache_read_tokens": 0,
                "spend_cents": 1,
            },
            {
                "model": "small",
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_write_tokens": 0,
                "cache_read_tokens": 10,
                "spend_cents": 0,
            },
        ]
    assert world.dx.stored == [expected]


@pytest.mark.parametrize(
    ("spends", "pushed", "shown"),
    [
        ([0.5, 0.5, 0.49], 1, 1.49),  # rounding each event first would give 2
        ([1.25, 1.25], 3, 2.5),  # half up, not half to even
        ([2.17, 2.03, 2.3], 7, 6.5),  # float addition gives 6.4999999...
        ([0.4], 0, 0.4),
        ([0.004, 0.0049], 0, 0.01),
    ],
)
def test_fractional_cents_are_summed_then_rounded_half_up(
    world: World, spends: list[float], pushed: int, shown: float
) -> None:
    for spend in spends:
        world.record(2, spend_cents=spend)
    world.cycle()
    (record,) = world.dx.stored
    assert record["spend_cents"] == pushed
    status = world.day_status(2)
    assert status is not None and status["totals"]["spend_cents"] == shown


def test_cost_usd_is_summed_as_cents_before_rounding(world: World) -> None:
    world.record(2, cost_usd=0.004)  # 0.4 cents
    world.record(2, cost_usd=0.001)  # 0.1 cents
    world.cycle()
    assert world.dx.stored[0]["spend_cents"] == 1


# -- late events -----------------------------------------------------------------------------


def test_events_after_a_push_show_as_late_and_are_never_pushed(world: World) -> None:
    world.record(2, event_id="a", input_tokens=100, spend_cents=0.4)
    world.cycle()
    world.clock.advance(hours=1)
    world.record(2, event_id="b", input_tokens=7, output_tokens=1, spend_cents=0.35)
    status = world.day_status(2)
    assert status is not None
    assert (status["state"], status["pushedAt"]) == ("pushed", format_ts(NOW))
    assert status["totals"] == {**ZERO_TOTALS, "events": 1, "input_tokens": 100, "spend_cents": 0.4}
    assert status["late"] == {
        **ZERO_TOTALS,
        "events": 1,
        "input_tokens": 7,
        "output_tokens": 1,
        "spend_cents": 0.35,
    }
    for manual in (False, True):
        assert empty(world.cycle(manual=manual))
    assert world.dx.stored == [dx_record(2, input_tokens=100)]
    entry = world.entry(2)
    assert entry is not None and entry.state == "pushed"


def test_status_keeps_what_was_pushed_when_a_bigger_version_arrives_late(world: World) -> None:
    world.record(2, event_id="a", input_tokens=100)
    world.cycle()
    world.record(2, event_id="a", input_tokens=150)  # the same event, grown after the push
    status = world.day_status(2)
    assert status is not None and status["state"] == "pushed"
    assert status["totals"] == {**ZERO_TOTALS, "events": 1, "input_tokens": 100}
    assert status["late"] == {**ZERO_TOTALS, "events": 1, "input_tokens": 150}
    assert empty(world.cycle(manual=True))
    assert world.dx.stored == [dx_record(2, input_tokens=100)]


def test_a_day_pushed_without_late_events_has_no_late_totals(world: World) -> None:
    world.record(2, input_tokens=1)
    world.record(0, input_tokens=5)  # today's file grows; day 2's does not
    world.cycle()
    world.record(0, event_id="t2", input_tokens=5)
    status = world.day_status(2)
    assert status is not None and status["state"] == "pushed" and "late" not in status


# -- races -----------------------------------------------------------------------------------


def record_many(world: World) -> set[tuple[str, str, str]]:
    keys = set()
    for n in range(2, 7):
        for tool in ("alpha-ai", "beta-ai"):
            world.record(n, tool=tool, input_tokens=n)
            keys.add((EMAIL, day(n), tool))
    return keys


def test_two_pushers_in_threads_push_each_day_exactly_once(world: World) -> None:
    keys = record_many(world)
    # slow answers keep the push lock busy while the other thread asks for it
    world.dx.then(*[Script(kind="slow", delay=0.03, store=True) for _ in keys])
    barrier = threading.Barrier(2)
    reports: list[CycleReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        pusher = world.new_pusher()
        barrier.wait(10)
        try:
            reports.append(pusher.cycle(world.settings, world.token, manual=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == [] and len(reports) == 2
    assert sorted(world.dx.stored_keys()) == sorted(keys)  # each exactly once
    pushed = [(EMAIL, p["date"], p["tool"]) for r in reports for p in r.pushed]
    assert sorted(pushed) == sorted(keys)
    assert len(world.dx.requests) == len(keys)


def test_pushers_in_separate_processes_push_each_day_exactly_once(world: World) -> None:
    keys = record_many(world)
    world.dx.then(*[Script(kind="slow", delay=0.03, store=True) for _ in keys])
    procs = [start_pusher_process(world) for _ in range(3)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert sorted(world.dx.stored_keys()) == sorted(keys)
    pushed = [(EMAIL, p["date"], p["tool"]) for o in outputs for p in o["pushed"]]
    assert sorted(pushed) == sorted(keys)
    assert all(o["failed"] == [] and o["unconfirmed"] == [] for o in outputs)
    for n in range(2, 7):
        for tool in ("alpha-ai", "beta-ai"):
            assert world.states(n, tool) == ["sending", "pushed"]


def test_a_background_cycle_does_not_wait_for_a_busy_push_lock(world: World) -> None:
    world.record(2)
    world.paths.home.mkdir(parents=True, exist_ok=True)
    with FileLock(world.paths.push_lock):
        started = time.monotonic()
        with pytest.raises(PushBusy, match="another window or the CLI is pushing"):
            world.cycle()
        assert time.monotonic() - started < 1.0
    assert world.dx.requests == [] and world.states(2) == []
    assert [p["date"] for p in world.cycle().pushed] == [day(2)]


# -- configuration that stops every push -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"enabled": False}, "enabled is off"),
        ({"email": ""}, "email is not set"),
        ({"tool": ""}, "tool is not set"),
        ({"instance_url": "http://acme.getdx.net"}, "plain http"),
        ({"token": None}, "DX_DATA_CLOUD_TOKEN is not set"),
        ({"token": TEST_TOKEN + "\n"}, "DX_DATA_CLOUD_TOKEN holds a space, line break"),
    ],
)
def test_a_blocking_problem_stops_every_push_before_anything_is_journaled(
    world: World, change: dict[str, Any], message: str
) -> None:
    world.record(2)
    if "token" in change:
        world.token = change["token"]
    else:
        world.settings = replace(world.settings, **change)
    attempts: list[Callable[[], object]] = [
        lambda: world.cycle(),
        lambda: world.cycle(manual=True),
        lambda: world.resend(2),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError, match=message):
            attempt()
    assert world.dx.requests == []
    assert not world.paths.journal_file.exists()
