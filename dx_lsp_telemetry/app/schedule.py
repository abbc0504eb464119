"""The push schedule: the leader (one sidecar per machine), the sources and OTLP receiver it runs,
when each completed day is pushed, and the user's own pushes (`flush`, `resend`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from filelock import Timeout

from dx_lsp_telemetry.ledger.daybook import read_day
from dx_lsp_telemetry.ledger.ledger import LedgerError
from dx_lsp_telemetry.ledger.retention import prune
from dx_lsp_telemetry.push.pusher import (
    ConfigurationError,
    CycleReport,
    NotAllowed,
    PushBusy,
)
from dx_lsp_telemetry.push.schedule import PushSchedule, Step, slot_offset
from dx_lsp_telemetry.settings.days import (
    day_end,
    day_of,
    format_ts,
    is_complete,
    utc_dates_overlapping,
)
from dx_lsp_telemetry.util.private import private_dir

if TYPE_CHECKING:
    pass
from dx_lsp_telemetry.app.state import (
    CLOCK_CHECK_SECONDS,
    CLOCK_JUMP_SECONDS,
    LEADER_RETRY_SECONDS,
    OTHERS_CHECK_SECONDS,
    OTLP_LEADER_RETRY_SECONDS,
    READER_NEVER_PUSHES,
    STATUS_MIN_INTERVAL,
    AppState,
)

log = logging.getLogger(__name__)


class PushLoop(AppState):
    """Leadership, the background loops, and the push requests."""

    async def flush_now(self) -> dict[str, Any]:
        self._refuse_if_reader()
        report = await self._run_push(
            lambda: self._pusher.cycle(self.settings, self._token, manual=True)
        )
        self._mark_dirty()
        self._replan.set()
        return report.to_json()

    async def resend(self, day: date, tool: str) -> dict[str, Any]:
        self._refuse_if_reader()
        report = await self._run_push(
            lambda: self._pusher.resend(self.settings, self._token, day, tool)
        )
        self._mark_dirty()
        return report.to_json()

    async def mark_pushed(self, day: date, tool: str) -> dict[str, Any]:
        self._refuse_if_reader()
        result = await self._run_push(
            lambda: self._pusher.mark_pushed(self.settings, self._token, day, tool)
        )
        self._mark_dirty()
        return result

    def _refuse_if_reader(self) -> None:
        if self.reader:
            raise NotAllowed(READER_NEVER_PUSHES)

    # -- background --------------------------------------------------------------------

    async def _leader_loop(self) -> None:
        """Hold the leader lock for life; the others try again every 30 s."""
        while not self.leader:
            self.leader = await self._run_io(self._try_leader)
            if self.leader:
                self._mark_dirty()
                if self.reader:
                    log.info("this window's reader now reads this host's AI tools' logs")
                    if self._check_standby():
                        return
                else:
                    log.info("this window's sidecar now runs the push schedule")
                    self._schedule_task = self._spawn(self._schedule_loop())
                self._start_sources()
                self._apply_otlp()
                await self._run_io(self._prune)
                return
            otlp = self.settings.enabled and self.settings.otlp.enabled
            await asyncio.sleep(OTLP_LEADER_RETRY_SECONDS if otlp else LEADER_RETRY_SECONDS)

    def _apply_otlp(self) -> None:
        """The OTLP receiver to match the settings and leadership (`otlp/receiver.py`)."""
        if self._otlp is None:
            if not (self.settings.enabled and self.settings.otlp.enabled) or self._standby:
                return
            from dx_lsp_telemetry.otlp.receiver import OtlpReceiver

            self._otlp = OtlpReceiver(
                self.paths, self.submit_record, lambda: self.settings, on_change=self._mark_dirty
            )
        self._otlp.apply(self.settings, self.leader and not self._standby)

    def _start_sources(self) -> None:
        """Only the leader reads AI tools' logs: one reader per machine, whatever the windows."""
        from dx_lsp_telemetry.sources.watcher import SourceWatcher

        self._sources = SourceWatcher(self.paths, self._env, on_ingested=self._threadsafe_dirty)
        self._sources.apply(self.settings)

    def _try_leader(self) -> bool:
        try:
            private_dir(self.paths.home)
            self._leader_lock.acquire(timeout=0)
            return True
        except (Timeout, OSError):
            return False

    def _prune(self) -> None:
        s = self.settings
        try:
            prune(
                self.paths,
                self._writer,
                self._index,
                day_of(self._clock(), s.day_boundary),
                s.retention_days,
                s.backfill_days,
            )
        except LedgerError as exc:
            log.warning("retention: %s", exc)

    async def _schedule_loop(self) -> None:
        """Push after start-up and after each day completes, when `PushSchedule` says."""
        schedule = PushSchedule(self._clock(), self.settings, backoff=self._pusher.backoff)
        self._schedule = schedule
        period = self.settings.flush_delay_seconds
        if period and self.settings.email and schedule.cycle_at is not None:
            log.info(
                "background pushes at this email's slot, %.0f s into every %d s: next at %s",
                slot_offset(self.settings.email, period),
                period,
                format_ts(schedule.cycle_at),
            )
        fresh = True  # read the retry time from the journal again
        while True:
            if fresh:
                retry = await self._run_io(
                    lambda: self._pusher.next_retry(
                        self.settings, self._token, after=schedule.tried_until
                    )
                )
                schedule.note_retry(retry, self._clock(), self.settings)
            fresh = await self._sleep_until(schedule.wake(self.settings))
            replan, soon = self._replan.is_set(), self._cycle_soon
            if replan:
                self._replan.clear()
                self._cycle_soon = False
            step = schedule.woke(self._clock(), self.settings, replan=replan, cycle_soon=soon)
            if step is Step.PRUNE:
                await self._run_io(self._prune)
            elif step is Step.CYCLE:
                report = await self._background_cycle()
                schedule.cycled(report is not None and report.stopped_early)

    async def _background_cycle(self) -> CycleReport | None:
        try:
            report = await self._run_push(
                lambda: self._pusher.cycle(self.settings, self._token, manual=False)
            )
        except ConfigurationError as exc:
            if str(exc) != self._logged_config_error:
                log.warning("not pushing: %s", exc)
                self._logged_config_error = str(exc)
            return None
        except PushBusy:
            return None  # another window or the CLI is pushing the same days
        except Exception:
            log.exception("push cycle failed")
            return None
        self._logged_config_error = None
        self._mark_dirty()
        return report

    async def _sleep_until(self, wake: datetime | None) -> bool:
        """Until `wake`, a replan, or CLOCK_CHECK_SECONDS at most; False if only the last
        came (the clock looked at, nothing else to do)."""
        wait = None if wake is None else max(0.0, (wake - self._clock()).total_seconds())
        capped = wait is None or wait > CLOCK_CHECK_SECONDS
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                self._replan.wait(), CLOCK_CHECK_SECONDS if capped or wait is None else wait
            )
        self._check_clock()
        return self._replan.is_set() or not capped

    async def _day_loop(self) -> None:
        """At each new day (also one the clock jumped to): a session marker, and the window
        moves on."""
        day = day_of(self._clock(), self.settings.day_boundary)
        while True:
            now = self._clock()
            boundary = self.settings.day_boundary
            left = (day_end(day_of(now, boundary), boundary) - now).total_seconds() + 1.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._day_tick.wait(), min(CLOCK_CHECK_SECONDS, max(1.0, left))
                )
            self._day_tick.clear()
            self._check_clock()
            today = day_of(self._clock(), self.settings.day_boundary)
            if today == day:
                continue
            day = today
            if self.settings.enabled:
                await self._run_io(self._write_marker)
            self._mark_dirty()

    def _check_clock(self) -> None:
        """After a jump of the wall clock (the machine slept, its clock was set): a day may have
        ended unseen, or a wait may now be far too long. Replan the schedule with a cycle (its
        random delay counted from now), write today's marker, refresh the status."""
        offset = self._clock().timestamp() - time.monotonic()
        last, self._clock_offset = self._clock_offset, offset
        if last is None or abs(offset - last) < CLOCK_JUMP_SECONDS:
            return
        log.info("the clock moved by %+.0f s (a sleep, or the clock was set)", offset - last)
        self._day_tick.set()
        self._request_cycle()
        self._mark_dirty()

    def _write_marker(self) -> None:
        """One `session` marker per day and sidecar: the day counts as inactive, not absent
        (not a reader's: the developer's own machine marks its days)."""
        if self._storage_problem or self.reader:
            return
        now = self._clock()
        settings = self.settings
        today = day_of(now, settings.day_boundary)
        try:
            self._index.refresh(utc_dates_overlapping(today, today, settings.day_boundary))
            if not read_day(self._index, settings, today).has_markers:
                self._writer.append_marker(now)
        except LedgerError as exc:
            log.warning("cannot write the session marker: %s", exc)

    async def _notify_loop(self) -> None:
        while True:
            await self._status_dirty.wait()
            self._status_dirty.clear()
            try:
                status = await self.status()
            except Exception:
                log.exception("cannot compute status")
                continue
            if status != self._last_status:
                previous, self._last_status = self._last_status, status
                self._on_status(status)
                if (
                    self.leader
                    and not self._backing_off()
                    and self._has_unpushed_complete_day(status, previous)
                ):
                    self._request_cycle()  # e.g. yesterday's event recorded after start-up
                await asyncio.sleep(STATUS_MIN_INTERVAL)

    def _has_unpushed_complete_day(
        self, status: dict[str, Any], previous: dict[str, Any] | None
    ) -> bool:
        """A complete day a cycle should try now: `pending` (not waiting for `retryAt`), or
        `failed` with events changed since `previous` (a changed record is tried again; the
        cycle compares it with the refused one, so an unchanged record is never re-sent)."""
        now, boundary = self._clock(), self.settings.day_boundary
        before = {(d["date"], d["tool"]): d for d in (previous or {}).get("days", [])}
        for d in status["days"]:
            if not is_complete(date.fromisoformat(d["date"]), now, boundary):
                continue
            if d["state"] == "pending" and "retryAt" not in d:
                return True
            old = before.get((d["date"], d["tool"]))
            if d["state"] == "failed" and old is not None and old["totals"] != d["totals"]:
                return True  # a backfill, a late log line, another window's event
        return False

    def _backing_off(self) -> bool:
        """The last cycle stopped early (DX unwell): new events wait for the schedule's next
        try, so a sick DX is not hit once per day of backlog. Settings and Flush Now do not."""
        return self._schedule is not None and self._schedule.backing_off(self._clock())

    def _request_cycle(self) -> None:
        """Ask the schedule (if this sidecar runs it) for a cycle after a random delay."""
        self._cycle_soon = True
        self._replan.set()

    async def _others_loop(self) -> None:
        """Other windows and the CLI share the data folder: what they record or push shows
        here within a second. A stat and a counter of the index's commits, once a second (a
        file watch would wake this process for each line it appends itself, 0.3 ms a line)."""
        seen = self._others_seen()
        while True:
            await asyncio.sleep(OTHERS_CHECK_SECONDS)
            self._check_managed()
            now = self._others_seen()
            if now != seen:
                seen = now
                self._mark_dirty()

    def _others_seen(self) -> tuple[object, ...]:
        try:
            st = os.stat(self.paths.journal_file)
            journal: object = (st.st_size, st.st_mtime_ns)
        except OSError:
            journal = None
        try:
            commits: object = self._quick_index.commits_by_others()
        except LedgerError:
            commits = None
        return journal, commits
