"""When the leader's background push cycles run: the schedule's decisions, on any clock.

Every email has a stable slot: a fixed offset into each period of `flush.delaySeconds`
counted from the Unix epoch (with the default hour: the same minute and second past every
hour). A cycle that something asks for (start-up, a day completing, a wake from sleep, a
settings change, an event for a day that waits) runs at the next slot, never before. So
however many machines are woken together, each sends at its own instant, and a fleet's
requests spread evenly over the period: about machines x records / period at most. A random
delay drawn at each trigger did not bound that: triggers that come often (each recorded event
while a day waits) keep only the earliest of many draws.

The sidecar's loop (`Telemetry._schedule_loop`) sleeps until `wake()`, says what woke it, and
runs the pruning or the cycle that `woke()` asks for. `benchmarks/fleet.py` drives the same
object for 10,000 simulated machines on a virtual clock, so what it measures is this code.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from dx_lsp_telemetry.settings.days import complete_at, day_of
from dx_lsp_telemetry.settings.settings import Settings


class Step(enum.Enum):
    WAIT = "wait"  # nothing due yet: sleep until `wake()` again
    PRUNE = "prune"  # a day became complete: a cycle is planned, retention may prune
    CYCLE = "cycle"  # push now, then report with `cycled`


def next_completion(now: datetime, settings: Settings) -> datetime:
    """The next moment a day becomes complete (10 minutes after it ends)."""
    boundary = settings.day_boundary
    today = day_of(now, boundary)
    times = (complete_at(d, boundary) for d in (today - timedelta(days=1), today))
    return min(t for t in times if t > now)


def slot_offset(email: str, period: float) -> float:
    """Seconds into each period at which `email` pushes: spread evenly over [0, period) by a
    hash, the same for every spelling of the email (as the journal's key)."""
    return _offset_us(email, round(period * 1_000_000)) / 1_000_000


def next_slot(moment: datetime, email: str, period: float) -> datetime:
    """The first instant at or after `moment` that is `email`'s slot; `moment` itself when the
    period is 0 (as tests set it). In whole microseconds, as datetimes are: a slot instant is
    its own next slot."""
    period_us = round(period * 1_000_000)
    if period_us <= 0:
        return moment
    offset_us = _offset_us(email, period_us)
    since_epoch = (moment - _EPOCH) // timedelta(microseconds=1)
    turn = -((offset_us - since_epoch) // period_us)  # ceiling division
    return _EPOCH + timedelta(microseconds=turn * period_us + offset_us)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _offset_us(email: str, period_us: int) -> int:
    digest = hashlib.sha256(email.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") * period_us >> 64


class PushSchedule:
    """A cycle after start-up, after each day completes and on request, each at the email's
    next slot; a pending day's `retryAt` (from the journal) wakes it too. After a cycle that
    stopped early (DX unwell) the next one backs off."""

    def __init__(
        self, now: datetime, settings: Settings, *, backoff: Callable[[int], float]
    ) -> None:
        self._backoff = backoff
        self.cycle_at: datetime | None = self._after(now, settings)
        self.completion = next_completion(now, settings)
        self._last_cycle = now - timedelta(days=1)
        self._retry: datetime | None = None
        self._early_stops = 0
        self._woke = now
        #: after a cycle that stopped early: until then, new events start no cycle
        self.calm_until: datetime | None = None

    @property
    def tried_until(self) -> datetime:
        """When the last cycle started: a `retryAt` at or before it was tried then."""
        return self._last_cycle

    def note_retry(self, retry: datetime | None, now: datetime, settings: Settings) -> None:
        """The journal's earliest `retryAt` after `tried_until`, read again at `now`. One that
        passed unseen (the machine slept, or no sidecar ran) waits for the slot, as a cycle
        asked for then does: machines woken together must not all retry at once."""
        if retry is not None and retry <= self._last_cycle:
            retry = None
        elif retry is not None and retry < now:
            retry = self._after(now, settings)
        self._retry = retry

    def wake(self, settings: Settings) -> datetime | None:
        """When to look again; None: only when asked (background pushes are off)."""
        if not (settings.enabled and settings.flush_enabled):
            return None
        times = (self._cycle_time(), self.completion, self._retry)
        return min((t for t in times if t is not None), default=None)

    def woke(self, now: datetime, settings: Settings, *, replan: bool, cycle_soon: bool) -> Step:
        """Awake at `now`: by a replan (settings, a clock jump, a request for a cycle when
        `cycle_soon`), or because `wake()` came."""
        self._last_cycle = min(self._last_cycle, now)  # set back: a retry time is not "tried" yet
        if replan:
            if cycle_soon:
                self._plan(self._after(now, settings))
            self.completion = next_completion(now, settings)
            return Step.WAIT
        if self.completion <= now:
            self._plan(self._after(self.completion, settings))
            self.completion = next_completion(now, settings)
            return Step.PRUNE
        cycle = self._cycle_time()
        if (cycle and cycle <= now) or (self._retry and self._retry <= now):
            self.cycle_at, self._last_cycle, self._woke = None, now, now
            return Step.CYCLE
        return Step.WAIT

    def cycled(self, stopped_early: bool) -> None:
        """The cycle `woke` asked for is over; `stopped_early`: DX looked unwell."""
        if stopped_early:
            self._early_stops += 1
            self.cycle_at = self._woke + timedelta(seconds=self._backoff(self._early_stops))
            self.calm_until = self.cycle_at
        else:
            self._early_stops = 0
            self.calm_until = None

    def backing_off(self, now: datetime) -> bool:
        return self.calm_until is not None and now < self.calm_until

    def _cycle_time(self) -> datetime | None:
        """`cycle_at`, but not before a pending day's `retryAt`: until then a background cycle
        finds nothing due (DX asked to wait, or could not be reached)."""
        if self.cycle_at is not None and self._retry is not None:
            return max(self.cycle_at, self._retry)
        return self.cycle_at

    def _plan(self, at: datetime) -> None:
        self.cycle_at = at if self.cycle_at is None else min(self.cycle_at, at)

    @staticmethod
    def _after(moment: datetime, settings: Settings) -> datetime:
        return next_slot(moment, settings.email, settings.flush_delay_seconds)
