"""When the leader's background push cycles run: the schedule's decisions, on any clock.

The sidecar's loop (`Telemetry._schedule_loop`) sleeps until `wake()`, says what woke it, and
runs the pruning or the cycle that `woke()` asks for. `benchmarks/fleet.py` drives the same
object for 10,000 simulated machines on a virtual clock, so what it measures is this code.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from dx_lsp_telemetry.days import complete_at, day_of
from dx_lsp_telemetry.settings import Settings


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


class PushSchedule:
    """A cycle after start-up, after each day completes and on request, each after a random
    delay in [0, `flush.delaySeconds`]; a pending day's `retryAt` (from the journal) wakes it
    too. After a cycle that stopped early (DX unwell) the next one backs off."""

    def __init__(
        self,
        now: datetime,
        settings: Settings,
        *,
        backoff: Callable[[int], float],
        rng: random.Random | None = None,
    ) -> None:
        self._backoff = backoff
        self._rng = rng or random.Random()
        self.cycle_at: datetime | None = self._after(now, settings)
        self.completion = next_completion(now, settings)
        #: when the last cycle started: a retry time at or before it was tried then
        self._last_cycle = now - timedelta(days=1)
        self._retry: datetime | None = None
        self._early_stops = 0
        self._woke = now
        #: after a cycle that stopped early: until then, new events start no cycle
        self.calm_until: datetime | None = None

    def note_retry(self, retry: datetime | None) -> None:
        """The journal's earliest `retryAt` of a pending day, read again."""
        self._retry = None if retry is not None and retry <= self._last_cycle else retry

    def wake(self, settings: Settings) -> datetime | None:
        """When to look again; None: only when asked (background pushes are off)."""
        if not (settings.enabled and settings.flush_enabled):
            return None
        times = (self.cycle_at, self.completion, self._retry)
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
        if (self.cycle_at and self.cycle_at <= now) or (self._retry and self._retry <= now):
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

    def _plan(self, at: datetime) -> None:
        self.cycle_at = at if self.cycle_at is None else min(self.cycle_at, at)

    def _after(self, moment: datetime, settings: Settings) -> datetime:
        return moment + timedelta(seconds=self._rng.uniform(0, settings.flush_delay_seconds))
