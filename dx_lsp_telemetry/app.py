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
import random
import threading
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock, Timeout

from dx_lsp_telemetry.config import TOKEN_ENV, push_target
from dx_lsp_telemetry.daybook import read_day
from dx_lsp_telemetry.days import (
    complete_at,
    day_end,
    day_of,
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
from dx_lsp_telemetry.pusher import ConfigurationError, CycleReport, PushBusy, Pusher, PushError
from dx_lsp_telemetry.recorder import append_events, index_appended, not_recorded
from dx_lsp_telemetry.retention import prune
from dx_lsp_telemetry.settings import ParsedSettings, Settings, parse_settings
from dx_lsp_telemetry.status import StatusInputs, build_status

if TYPE_CHECKING:
    from dx_lsp_telemetry.sources.watcher import SourceWatcher
    from dx_lsp_telemetry.watch import DirectoryWatch

log = logging.getLogger(__name__)
T = TypeVar("T")

LEADER_RETRY_SECONDS = 30.0
STATUS_MIN_INTERVAL = 1.0
FSYNC_AFTER_SECONDS = 2.0


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
        self._rng = random.Random()
        self._parsed: ParsedSettings = parse_settings(None, env)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="dx-io")
        #: events validated and waiting for the io thread, with their answers
        self._queue: list[tuple[UsageEvent, asyncio.Future[dict[str, Any]]]] = []
        self._queue_lock = threading.Lock()
        self._queue_draining = False
        self._push_io = ThreadPoolExecutor(1, thread_name_prefix="dx-push")
        self._index = LedgerIndex(paths.ledger_dir)
        self._journal = Journal(paths.journal_file)
        self._writer = LedgerWriter(paths.ledger_dir)
        self._pusher = Pusher(paths, clock=clock)
        self._leader_lock = FileLock(paths.leader_lock)
        self.leader = False
        self._storage_problem: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._schedule_task: asyncio.Task[None] | None = None
        self._replan = asyncio.Event()
        self._cycle_soon = False
        self._status_dirty = asyncio.Event()
        self._last_status: dict[str, Any] | None = None
        self._fsync_pending = False
        self._watch: DirectoryWatch | None = None  # watchdog loads after `initialize`
        self._sources: SourceWatcher | None = None  # the leader reads AI tools' logs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logged_config_error: str | None = None
        self._settings_throttle = Throttle(first=20)

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
            self.paths.home.mkdir(parents=True, exist_ok=True)
            tmp = self.paths.config_file.with_name(f".settings.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(settings.to_editor_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, self.paths.config_file)
        except OSError as exc:
            log.warning("cannot save settings for the CLI in %s: %s", self.paths.home, exc.strerror)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._run_io(self._prepare_storage)
        if self.settings.enabled and self._storage_problem is None:
            self._spawn(self._settle_interrupted())
        self._spawn(self._leader_loop())
        self._spawn(self._day_loop())
        self._spawn(self._notify_loop())
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
        if self.settings.enabled and self._watch is None and self._loop is not None:
            from dx_lsp_telemetry.watch import DirectoryWatch  # after `initialize` is answered

            loop = self._loop
            self._watch = DirectoryWatch(
                [self.paths.home, self.paths.ledger_dir],
                lambda _path: self._threadsafe_dirty(loop),
            )
            for problem in self._watch.start():
                log.warning("%s; other windows' changes show on the next status request", problem)
            self._spawn(self._run_io(self._write_marker))
        elif not self.settings.enabled and self._watch is not None:
            self._watch.stop()
            self._watch = None

    async def stop(self) -> None:
        """Quick and local: no network. A push in flight is left to the next start to judge."""
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._sources is not None:
            self._sources.stop()
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
        return await self.submit_record(raw)

    def submit_record(self, raw: Any) -> asyncio.Future[dict[str, Any]]:
        """Validate `raw` now (EventError names the field); the future holds the answer once
        the event's line is written. Events submitted while a write is under way are written
        together next (group commit), in the order they came."""
        settings = self.settings
        rules = EventRules(
            settings.tool, self._clock(), settings.day_boundary, settings.backfill_days
        )
        event = validate_event(raw, rules)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not settings.enabled:
            answer.set_result(not_recorded(event, settings.day_boundary))
        elif self._storage_problem:
            answer.set_exception(LedgerError(self._storage_problem))
        else:
            with self._queue_lock:
                self._queue.append((event, answer))
                start = not self._queue_draining
                self._queue_draining = True
            if start:
                self._io.submit(self._write_queued)
        return answer

    def _write_queued(self) -> None:
        """On the io thread: every event queued so far, in one write."""
        with self._queue_lock:
            queued, self._queue = self._queue, []
            self._queue_draining = False
        settings = self.settings
        rules = EventRules(
            settings.tool, self._clock(), settings.day_boundary, settings.backfill_days
        )
        appended: list[Appended] = []
        try:
            answers: list[dict[str, Any]] | BaseException
            answers, appended = append_events(
                self._writer,
                self._index,
                [event for event, _ in queued],
                settings.day_boundary,
                window=rules.window_files,
            )
        except Exception as exc:
            answers = exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._answer, [a for _, a in queued], answers)
        if appended:  # after the answers: the index is not what makes an event recorded
            index_appended(self._index, appended)

    def _answer(
        self,
        futures: list[asyncio.Future[dict[str, Any]]],
        answers: list[dict[str, Any]] | BaseException,
    ) -> None:
        for i, future in enumerate(futures):
            if future.done():
                continue  # cancelled by the client
            if isinstance(answers, BaseException):
                future.set_exception(answers)
            else:
                future.set_result(answers[i])
        if not isinstance(answers, BaseException):
            self._schedule_fsync()
            self._mark_dirty()

    async def status(self) -> dict[str, Any]:
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
        inputs = StatusInputs(
            self.paths.home, self.leader, self.settings, problems, self._token, self._clock()
        )
        return build_status(inputs, self._index, self._journal)

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
                await self._run_io(self._prune)
                return
            await asyncio.sleep(LEADER_RETRY_SECONDS)

    def _start_sources(self) -> None:
        """Only the leader reads AI tools' logs: one reader per machine, whatever the windows."""
        from dx_lsp_telemetry.sources.watcher import SourceWatcher

        self._sources = SourceWatcher(self.paths, self._env)
        self._sources.apply(self.settings)

    def _try_leader(self) -> bool:
        try:
            self.paths.home.mkdir(parents=True, exist_ok=True)
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
        """Push after start-up and after each day completes, each after a random delay."""
        cycle_at: datetime | None = self._clock() + self._random_delay()
        completion = self._next_completion()
        last_cycle = self._clock() - timedelta(days=1)
        early_stops = 0
        while True:
            retry = await self._run_io(lambda: self._pusher.next_retry(self.settings, self._token))
            if retry is not None and retry <= last_cycle:
                retry = None  # already tried at or after that moment
            wake = min((t for t in (cycle_at, completion, retry) if t is not None), default=None)
            if not (self.settings.enabled and self.settings.flush_enabled):
                wake = None
            await self._sleep_until(wake)
            now = self._clock()
            if self._replan.is_set():
                self._replan.clear()
                if self._cycle_soon:
                    self._cycle_soon = False
                    candidate = now + self._random_delay()
                    cycle_at = candidate if cycle_at is None else min(cycle_at, candidate)
                completion = self._next_completion()
                continue
            if completion <= now:
                candidate = completion + self._random_delay()
                cycle_at = candidate if cycle_at is None else min(cycle_at, candidate)
                completion = self._next_completion()
                await self._run_io(self._prune)
                continue
            if (cycle_at and cycle_at <= now) or (retry and retry <= now):
                cycle_at, last_cycle = None, now
                report = await self._background_cycle()
                if report is not None and report.stopped_early:
                    early_stops += 1
                    cycle_at = now + timedelta(seconds=self._pusher.backoff(early_stops))
                else:
                    early_stops = 0

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

    def _next_completion(self) -> datetime:
        now = self._clock()
        boundary = self.settings.day_boundary
        today = day_of(now, boundary)
        times = (complete_at(d, boundary) for d in (today - timedelta(days=1), today))
        return min(t for t in times if t > now)

    def _random_delay(self) -> timedelta:
        return timedelta(seconds=self._rng.uniform(0, self.settings.flush_delay_seconds))

    async def _sleep_until(self, wake: datetime | None) -> None:
        timeout = None if wake is None else max(0.0, (wake - self._clock()).total_seconds())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._replan.wait(), timeout)

    async def _day_loop(self) -> None:
        """At each new day: a session marker, and the window moves on."""
        while True:
            now = self._clock()
            end = day_end(day_of(now, self.settings.day_boundary), self.settings.day_boundary)
            await asyncio.sleep(max(1.0, (end - now).total_seconds() + 1.0))
            if self.settings.enabled:
                await self._run_io(self._write_marker)
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
                self._last_status = status
                self._on_status(status)
                if self.leader and self._has_unpushed_complete_day(status):
                    self._request_cycle()  # e.g. yesterday's event recorded after start-up
                await asyncio.sleep(STATUS_MIN_INTERVAL)

    def _has_unpushed_complete_day(self, status: dict[str, Any]) -> bool:
        now, boundary = self._clock(), self.settings.day_boundary
        return any(
            d["state"] == "pending"
            and "retryAt" not in d
            and is_complete(date.fromisoformat(d["date"]), now, boundary)
            for d in status["days"]
        )

    def _request_cycle(self) -> None:
        """Ask the schedule (if this sidecar runs it) for a cycle after a random delay."""
        self._cycle_soon = True
        self._replan.set()

    def _threadsafe_dirty(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon_threadsafe(self._mark_dirty)

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
