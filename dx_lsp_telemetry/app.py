"""The sidecar's state and background work, independent of LSP.

Threads: the asyncio loop only decides; ledger, journal and status work runs on one `io`
thread (so the ledger view has a single owner), pushes on one `push` thread. Neither is
joined at exit, so a push in flight can never delay the editor's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, Union

from filelock import FileLock, Timeout

from dx_lsp_telemetry.config import TOKEN_ENV, push_target
from dx_lsp_telemetry.daybook import read_day
from dx_lsp_telemetry.days import (
    day_end,
    day_of,
    format_ts,
    is_complete,
    utc_dates_overlapping,
    utc_now,
)
from dx_lsp_telemetry.events import EventRules, UsageEvent, validate_event
from dx_lsp_telemetry.journal import Journal
from dx_lsp_telemetry.ledger import Appended, LedgerError, LedgerWriter
from dx_lsp_telemetry.ledger_index import LedgerIndex
from dx_lsp_telemetry.logs import Throttle
from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.private import FILE_MODE, create_private_text, private_dir
from dx_lsp_telemetry.pusher import ConfigurationError, CycleReport, PushBusy, Pusher, PushError
from dx_lsp_telemetry.recorder import (
    QuickRecorder,
    append_events,
    index_appended,
    not_recorded,
)
from dx_lsp_telemetry.retention import prune
from dx_lsp_telemetry.schedule import PushSchedule, Step, slot_offset
from dx_lsp_telemetry.settings import ParsedSettings, Settings, parse_settings
from dx_lsp_telemetry.status import StatusInputs, build_status

if TYPE_CHECKING:
    from dx_lsp_telemetry.otlp.receiver import OtlpReceiver
    from dx_lsp_telemetry.sources.watcher import SourceWatcher

log = logging.getLogger(__name__)
T = TypeVar("T")
#: takes a recordUsage's answer, or the error that stopped it
Done = Callable[[Union[dict[str, Any], BaseException]], None]  # noqa: UP007 (3.9)

LEADER_RETRY_SECONDS = 30.0
#: with the OTLP receiver on: exporters retry for seconds only, so a new leader must follow soon
OTLP_LEADER_RETRY_SECONDS = 2.0
OTHERS_CHECK_SECONDS = 1.0
#: a quick record's own lines are indexed this long after it, or once they are this many bytes
QUICK_INDEX_AFTER = 0.05
QUICK_INDEX_BYTES = 16 << 10
STATUS_MIN_INTERVAL = 1.0
FSYNC_AFTER_SECONDS = 2.0
#: The loop's timers run on the monotonic clock, which does not count a machine's sleep and
#: ignores a clock being set, while days end on the wall clock. So no wait lasts longer than
#: this: a jump of the wall clock is seen within a minute with no request at all (a request
#: sees it at once).
CLOCK_CHECK_SECONDS = 60.0
#: a change of (wall clock - monotonic clock) larger than this is a jump, not a slew
CLOCK_JUMP_SECONDS = 2.0


class Telemetry:
    def __init__(
        self,
        paths: DataPaths,
        env: Mapping[str, str],
        *,
        on_status: Callable[[dict[str, Any]], None],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.paths = paths
        self._env = env
        self._token = env.get(TOKEN_ENV) or None
        self._on_status = on_status
        self._clock = clock
        self._parsed: ParsedSettings = parse_settings(None, env)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="dx-io")
        #: events validated and waiting to be written, with their answers (loop thread only)
        self._queue: list[tuple[UsageEvent, Done]] = []
        #: groups of events being written on the io thread
        self._io_writes = 0
        #: the loop thread's own connection to the index, for quick records (never rebuilds)
        self._quick_index = LedgerIndex(paths.ledger_dir, repair=False)
        self._push_io = ThreadPoolExecutor(1, thread_name_prefix="dx-push")
        self._index = LedgerIndex(paths.ledger_dir)
        self._journal = Journal(paths.journal_file)
        self._writer = LedgerWriter(paths.ledger_dir)
        self._quick = QuickRecorder(self._writer, self._quick_index)
        self._quick_flush: asyncio.TimerHandle | None = None
        self._pusher = Pusher(paths, clock=clock)
        self._leader_lock = FileLock(paths.leader_lock, mode=FILE_MODE)
        self.leader = False
        self._storage_problem: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._schedule_task: asyncio.Task[None] | None = None
        self._replan = asyncio.Event()
        self._cycle_soon = False
        #: the leader's push schedule, once this sidecar runs it
        self._schedule: PushSchedule | None = None
        self._status_dirty = asyncio.Event()
        self._last_status: dict[str, Any] | None = None
        self._fsync_pending = False
        self._sources: SourceWatcher | None = None  # the leader reads AI tools' logs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logged_config_error: str | None = None
        #: wall clock minus monotonic clock at the last look: its change is a jump
        self._clock_offset: float | None = None
        self._day_tick = asyncio.Event()
        self._settings_throttle = Throttle(first=20)
        #: the OTLP receiver, made (and its modules loaded) once it is first turned on
        self._otlp: OtlpReceiver | None = None

    @property
    def settings(self) -> Settings:
        return self._parsed.settings

    # -- settings ----------------------------------------------------------------------

    def configure(self, raw: Any) -> None:
        """Apply the editor's `dxTelemetry` section; takes effect at once."""
        previous = self._parsed
        before = previous.settings
        self._parsed = parse_settings(raw, self._env)
        self._log_problems(previous)
        after = self._parsed.settings
        self._save_settings(after)
        if self._loop is None:
            return
        if push_target(before, self._token) != push_target(after, self._token) or (
            (before.flush_enabled, before.flush_delay_seconds, before.enabled)
            != (after.flush_enabled, after.flush_delay_seconds, after.enabled)
        ):
            self._request_cycle()
        if before.enabled != after.enabled:
            self._apply_enabled()
        if self._sources is not None:
            self._sources.apply(after)
        self._apply_otlp()
        self._mark_dirty()

    def _log_problems(self, previous: ParsedSettings) -> None:
        """One line for what is wrong that was not before: the same bad settings sent again
        log nothing, and a flood of changes stays a few lines (status lists every problem)."""
        known_problems, known_unknown = set(previous.problems), set(previous.unknown)
        problems = [p for p in self._parsed.problems if p not in known_problems]
        unknown = [k for k in self._parsed.unknown if k not in known_unknown]
        if not (problems or unknown):
            return
        n = self._settings_throttle("settings")
        if n is None:
            return
        parts = []
        if problems:
            parts.append("setting ignored, default used: " + _first(problems, "; "))
        if unknown:
            keys = [k if len(k) <= 80 else k[:77] + "..." for k in unknown]
            parts.append("unknown setting ignored: " + _first(keys, ", "))
        log.warning("%s%s", "; ".join(parts), f" ({n} such changes so far)" if n > 3 else "")

    def _save_settings(self, settings: Settings) -> None:
        """So `dx-lsp-telemetry flush` in a terminal pushes as the editor would."""
        try:
            private_dir(self.paths.home)
            tmp = self.paths.config_file.with_name(f".settings.{os.getpid()}.tmp")
            with create_private_text(tmp) as f:
                f.write(json.dumps(settings.to_editor_dict(), indent=2) + "\n")
            os.replace(tmp, self.paths.config_file)
        except OSError as exc:
            log.warning("cannot save settings for the CLI in %s: %s", self.paths.home, exc.strerror)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._check_clock()
        await self._run_io(self._prepare_storage)
        if self.settings.enabled and self._storage_problem is None:
            self._spawn(self._settle_interrupted())
        self._spawn(self._leader_loop())
        self._spawn(self._day_loop())
        self._spawn(self._notify_loop())
        self._spawn(self._others_loop())
        self._apply_otlp()
        self._apply_enabled()
        self._mark_dirty()

    async def _settle_interrupted(self) -> None:
        """A push cut short by a crash shows as `unconfirmed` from this window's start."""
        try:
            await self._run_push(self._pusher.settle_interrupted)
        except OSError as exc:
            log.warning("cannot check the journal for interrupted pushes: %s", exc)
        self._mark_dirty()

    def _prepare_storage(self) -> None:
        try:
            self.paths.ensure()
            probe = self.paths.home / f".probe.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            self._storage_problem = None
        except OSError as exc:
            self._storage_problem = (
                f"the data folder {self.paths.home} is not usable ({exc.strerror}): nothing can be "
                "recorded; fix its permissions or set DX_TELEMETRY_HOME"
            )
            log.error("%s", self._storage_problem)

    def _apply_enabled(self) -> None:
        if self.settings.enabled and self._loop is not None:
            self._spawn(self._run_io(self._write_marker))

    async def stop(self) -> None:
        """Quick and local: no network. A push in flight is left to the next start to judge."""
        if self._sources is not None:
            self._sources.stop()
        if self._otlp is not None:
            await self._otlp.stop()
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self._run_io(self._final_sync), timeout=1.0)
        except (asyncio.TimeoutError, OSError) as exc:
            log.warning("final ledger sync skipped: %s", exc)

    def sync_to_disk(self) -> None:
        """Last words after the loop has ended (stdin closed, `exit`): fsync, nothing else."""
        self._writer.sync()

    def _final_sync(self) -> None:
        self._writer.sync()
        if self.leader:
            self._leader_lock.release(force=True)

    # -- requests ----------------------------------------------------------------------

    async def record(self, raw: Any) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def done(outcome: dict[str, Any] | BaseException) -> None:
            if answer.done():
                return
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

        self.submit_record(raw, done)
        return await answer

    def submit_record(self, raw: Any, done: Done) -> None:
        """Validate `raw` now (EventError names the field); `done` gets the answer once the
        event's line is written (or the error that stopped it). Events submitted together
        (one read of stdin holds many) are written together, in the order they came."""
        settings = self.settings
        self._check_clock()
        event = validate_event(raw, self._rules())
        if not settings.enabled:
            done(not_recorded(event, settings.day_boundary))
        elif self._storage_problem:
            done(LedgerError(self._storage_problem))
        else:
            if not self._queue:  # at the latest on the loop's next turn
                asyncio.get_running_loop().call_soon(self.write_queued)
            self._queue.append((event, done))

    def write_queued(self) -> None:
        """On the loop: the events queued, in one write, where that is quick (nothing to
        hand to another thread: most of a recordUsage's cost); else on the io thread. The
        transport calls this after each read of stdin, so a burst is one write."""
        if not self._queue:
            return
        queued, self._queue = self._queue, []
        events = [event for event, _ in queued]
        dones = [done for _, done in queued]
        settings = self.settings
        window = self._rules().window_files
        answers: list[dict[str, Any]] | BaseException | None = None
        if not self._io_writes:  # order: while one is on the io thread, all go there
            try:
                answers = self._quick.record(events, settings.day_boundary, window)
            except Exception as exc:
                answers = exc
        if answers is None:
            self._flush_quick()  # the io thread's index reads the ledger, ours or not
            self._io_writes += 1
            self._io.submit(self._write_on_io, events, dones)
            return
        self._answer(dones, answers)
        if self._quick.pending_bytes > QUICK_INDEX_BYTES:
            self._flush_quick()
        elif self._quick.pending_bytes and self._quick_flush is None:
            assert self._loop is not None
            self._quick_flush = self._loop.call_later(QUICK_INDEX_AFTER, self._flush_quick)

    def _flush_quick(self) -> None:
        if self._quick_flush is not None:
            self._quick_flush.cancel()
            self._quick_flush = None
        self._quick.flush()

    def _write_on_io(self, events: list[UsageEvent], dones: list[Done]) -> None:
        """On the io thread, where the index may need long work first (a rebuild)."""
        settings = self.settings
        appended: list[Appended] = []
        try:
            answers: list[dict[str, Any]] | BaseException
            answers, appended = append_events(
                self._writer,
                self._index,
                events,
                settings.day_boundary,
                window=self._rules().window_files,
            )
        except Exception as exc:
            answers = exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._answered_on_io, dones, answers)
        if appended:  # after the answers: the index is not what makes an event recorded
            index_appended(self._index, appended)

    def _answered_on_io(
        self, dones: list[Done], answers: list[dict[str, Any]] | BaseException
    ) -> None:
        self._io_writes -= 1
        self._answer(dones, answers)

    def _answer(self, dones: list[Done], answers: list[dict[str, Any]] | BaseException) -> None:
        for i, done in enumerate(dones):
            try:
                done(answers if isinstance(answers, BaseException) else answers[i])
            except Exception:
                log.exception("cannot answer a recordUsage")
        if not isinstance(answers, BaseException):
            self._schedule_fsync()
            self._mark_dirty()

    def _rules(self) -> EventRules:
        s = self.settings
        return EventRules(s.tool, self._clock(), s.day_boundary, s.backfill_days)

    async def status(self) -> dict[str, Any]:
        self._check_clock()
        return await self._run_io(self._status_sync)

    def _status_sync(self) -> dict[str, Any]:
        problems = list(self._parsed.problems)
        if self._storage_problem:
            problems.append(self._storage_problem)
        target = push_target(self.settings, self._token)
        if self._pusher.is_paused(target):
            problems.append(
                f"pushes paused: {self._pusher.pause_reason}. They resume when the token or "
                "settings change, or with Flush Now"
            )
        otlp = self._otlp
        if otlp is not None and otlp.problem:
            problems.append(otlp.problem)
        inputs = StatusInputs(
            self.paths.home, self.leader, self.settings, problems, self._token, self._clock()
        )
        status = build_status(inputs, self._index, self._journal)
        status["otlp"] = otlp.status() if otlp is not None else {"state": "off"}
        return status

    async def flush_now(self) -> dict[str, Any]:
        report = await self._run_push(
            lambda: self._pusher.cycle(self.settings, self._token, manual=True)
        )
        self._mark_dirty()
        self._replan.set()
        return report.to_json()

    async def resend(self, day: date, tool: str) -> dict[str, Any]:
        report = await self._run_push(
            lambda: self._pusher.resend(self.settings, self._token, day, tool)
        )
        self._mark_dirty()
        return report.to_json()

    async def mark_pushed(self, day: date, tool: str) -> dict[str, Any]:
        result = await self._run_push(
            lambda: self._pusher.mark_pushed(self.settings, self._token, day, tool)
        )
        self._mark_dirty()
        return result

    # -- background --------------------------------------------------------------------

    async def _leader_loop(self) -> None:
        """Hold the leader lock for life; the others try again every 30 s."""
        while not self.leader:
            self.leader = await self._run_io(self._try_leader)
            if self.leader:
                log.info("this window's sidecar now runs the push schedule")
                self._mark_dirty()
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
            if not (self.settings.enabled and self.settings.otlp.enabled):
                return
            from dx_lsp_telemetry.otlp.receiver import OtlpReceiver

            self._otlp = OtlpReceiver(
                self.paths, self.submit_record, lambda: self.settings, on_change=self._mark_dirty
            )
        self._otlp.apply(self.settings, self.leader)

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
        """One `session` marker per day and sidecar: the day counts as inactive, not absent."""
        if self._storage_problem:
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

    def _threadsafe_dirty(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed at exit
                self._loop.call_soon_threadsafe(self._mark_dirty)

    def _mark_dirty(self) -> None:
        self._status_dirty.set()

    def _schedule_fsync(self) -> None:
        if self._fsync_pending or self._loop is None:
            return
        self._fsync_pending = True

        def sync() -> None:
            self._fsync_pending = False
            self._spawn(self._run_io(self._writer.sync))

        self._loop.call_later(FSYNC_AFTER_SECONDS, sync)

    # -- plumbing ----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def _run_io(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn)

    async def _run_push(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._push_io, fn)


def _first(items: list[str], sep: str, count: int = 5) -> str:
    more = f"{sep}and {len(items) - count} more" if len(items) > count else ""
    return sep.join(items[:count]) + more


__all__ = ["ConfigurationError", "PushBusy", "PushError", "Telemetry"]
