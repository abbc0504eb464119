"""What the sidecar holds: its settings, storage, queues, locks and tasks, shared by the parts
of `Telemetry` (`telemetry`, `recording`, `schedule`, `status_view`, `reader`).

Threads: the asyncio loop only decides; ledger, journal and status work runs on one `io`
thread (so the ledger view has a single owner), pushes on one `push` thread. Neither is
joined at exit, so a push in flight can never delay the editor's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, Union

from filelock import FileLock

from dx_lsp_telemetry.app.forward import Forwarding
from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.ledger.recorder import (
    QuickRecorder,
)
from dx_lsp_telemetry.push.config import TOKEN_ENV
from dx_lsp_telemetry.push.journal import Journal
from dx_lsp_telemetry.push.pusher import (
    Pusher,
)
from dx_lsp_telemetry.push.schedule import PushSchedule
from dx_lsp_telemetry.record.events import EventRules, UsageEvent
from dx_lsp_telemetry.settings.days import (
    utc_now,
)
from dx_lsp_telemetry.settings.managed import ManagedConfig, ManagedSettings, apply_managed
from dx_lsp_telemetry.settings.managed_sources import machine_sources
from dx_lsp_telemetry.settings.settings import ParsedSettings, Settings
from dx_lsp_telemetry.util.logs import Throttle
from dx_lsp_telemetry.util.private import FILE_MODE

if TYPE_CHECKING:
    from dx_lsp_telemetry.otlp.receiver import OtlpReceiver
    from dx_lsp_telemetry.sources.watcher import SourceWatcher


log = logging.getLogger(__name__)
T = TypeVar("T")
#: takes a recordUsage's answer, or the error that stopped it
Done = Callable[[Union[dict[str, Any], BaseException]], None]

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
READER_NEVER_PUSHES = (
    "this sidecar is a remote host's reader: it forwards the usage it reads to DX Telemetry on "
    "your own machine, which pushes it; it never pushes itself"
)


class AppState:
    def __init__(
        self,
        paths: DataPaths,
        env: Mapping[str, str],
        *,
        on_status: Callable[[dict[str, Any]], None],
        clock: Callable[[], datetime] = utc_now,
        reader: bool = False,
    ) -> None:
        self.paths = paths
        #: a remote host's reader (`serve --reader`): reads logs, forwards, never pushes
        self.reader = reader
        self._forwarding = Forwarding(paths) if reader else None
        #: a reader on a host whose own DX Telemetry reads (and pushes) its logs: forwards nothing
        self._standby = False
        self._env = env
        self._token = env.get(TOKEN_ENV) or None
        self._on_status = on_status
        self._clock = clock
        #: the machine's managed configuration, over the editor's settings (`managed.py`)
        self._managed = ManagedSettings(machine_sources(env))
        self._managed_config: ManagedConfig = self._managed.current()
        self._logged_managed: tuple[object, ...] = ()
        #: the editor's section as last sent, for applying a changed managed configuration
        self._raw_settings: Any = None
        #: problems left out, so the first `configure` logs all that is wrong
        self._parsed: ParsedSettings = replace(
            apply_managed(None, self._managed_config, env), problems=[]
        )
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

    def _rules(self) -> EventRules:
        s = self.settings
        return EventRules(s.tool, self._clock(), s.day_boundary, s.backfill_days)

    # -- what one part asks of another (each defined in the part named; `Telemetry` has all) --

    async def status(self) -> dict[str, Any]:  # status_view
        raise NotImplementedError

    def submit_record(self, raw: Any, done: Done) -> None:  # recording
        raise NotImplementedError

    def _check_clock(self) -> None:  # schedule
        raise NotImplementedError

    def _apply_otlp(self) -> None:  # schedule
        raise NotImplementedError

    def _check_standby(self) -> bool:  # reader
        raise NotImplementedError

    def _check_managed(self) -> None:  # telemetry
        raise NotImplementedError

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
