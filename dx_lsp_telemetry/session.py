"""The sidecar's LSP session, with or without pygls: `initialize` and `initialized`, the
readiness requests wait for, and the requests the transport answers itself (`recordUsage`,
`status`). pygls and lsprotocol take a third of a second to import: they load, on a thread,
when a message needs them, and serve every other method (`server.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dx_lsp_telemetry import __version__, stdio
from dx_lsp_telemetry.app import Telemetry
from dx_lsp_telemetry.config import TOKEN_ENV
from dx_lsp_telemetry.events import EventError
from dx_lsp_telemetry.forward import MAX_BATCH, reader_paths
from dx_lsp_telemetry.ledger import LedgerError
from dx_lsp_telemetry.logs import ForwardToEditor, Throttle
from dx_lsp_telemetry.lsp_names import (
    FORWARD_DONE,
    FORWARD_TAKE,
    RECORD_USAGE,
    STATUS,
    STATUS_CHANGED,
    initialize_result,
)
from dx_lsp_telemetry.parent import hard_exit, wait_for_exit
from dx_lsp_telemetry.paths import resolve_home
from dx_lsp_telemetry.pusher import NotAllowed
from dx_lsp_telemetry.settings import SECTION
from dx_lsp_telemetry.shown import is_unicode, show

log = logging.getLogger(__name__)

INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32600, -32602, -32603
NOT_INITIALIZED = -32002
#: LSP's RequestFailed: the request was fine, the operation was not possible here
REQUEST_FAILED = -32803
#: how long a request sent right after `initialize` waits for the settings to apply
READY_WAIT_SECONDS = 5.0
#: LSP's MessageType of window/logMessage, by logging level
_LOG_TYPES = {logging.ERROR: 1, logging.WARNING: 2, logging.INFO: 3}
_LOG = 4

#: what a settings pull returns when the editor's answer is missing or no answer
PULL_FAILED: Any = object()
Pull = Callable[[], Awaitable[Any]]


class Session:
    def __init__(
        self, dispatcher: stdio.Dispatcher, client_process_id: int | None, reader: bool = False
    ) -> None:
        self._dispatcher = dispatcher
        env = dict(os.environ)
        self.telemetry = Telemetry(
            reader_paths(env) if reader else resolve_home(env),
            env,
            on_status=lambda s: dispatcher.notify(STATUS_CHANGED, s),
            reader=reader,
        )
        self.parent_pid = client_process_id
        self.pull_settings_at_start = False
        self.initialize_seen = False
        self.initialized_seen = False
        #: set once `initialized` has applied the settings: requests racing it wait for them
        self.ready = asyncio.Event()
        self.throttle = Throttle()
        self._tasks: set[asyncio.Task[Any]] = set()
        dispatcher.fast_paths["initialize"] = self._initialize
        dispatcher.fast_paths["shutdown"] = self._shutdown
        dispatcher.fast_notifications["initialized"] = self._initialized_now
        dispatcher.fast_notifications["workspace/didChangeConfiguration"] = self._settings
        dispatcher.fast_notifications["exit"] = self._exit
        dispatcher.fast_paths[RECORD_USAGE] = self._record
        dispatcher.fast_paths[STATUS] = self._status
        dispatcher.fast_paths[FORWARD_TAKE] = self._forward_take
        dispatcher.fast_paths[FORWARD_DONE] = self._forward_done
        dispatcher.after_batch.append(self.telemetry.write_queued)

    # -- the lifecycle -----------------------------------------------------------------

    def _initialize(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        """Answered at once: the answer depends on nothing pygls knows."""
        if self.initialize_seen:  # another would configure the sidecar anew from whatever
            reply(msg_id, error(INVALID_REQUEST, "initialize was already received"))
        elif not isinstance(params, dict):
            reply(msg_id, error(INVALID_PARAMS, "initialize: params must be an object"))
        else:
            self.initialize(params)
            reply(msg_id, {"result": initialize_result()})
        return True

    def initialize(self, params: Mapping[str, Any]) -> None:
        """`initialize`'s params, as sent: the editor's process and settings."""
        self.initialize_seen = True
        pid = params.get("processId")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            self.parent_pid = pid
        options = params.get("initializationOptions")
        workspace = (params.get("capabilities") or {}).get("workspace")
        pulls = isinstance(workspace, dict) and workspace.get("configuration") is True
        self.pull_settings_at_start = options is None and pulls
        self.telemetry.configure(options)

    def _initialized_now(self, params: Any) -> bool:
        """Taken by the transport, unless the settings must first be asked of the editor
        (pygls sends that request, so it is loaded first)."""
        if self.pull_settings_at_start and not self.initialized_seen:
            return False
        self._spawn(self.initialized(None))
        return True

    async def initialized(self, pull: Pull | None) -> None:
        if self.initialized_seen:  # a second set of loops and log forwarders would double all
            if self.throttle("initialized") is not None:
                log.warning("ignored `initialized`: it was already received")
            return
        self.initialized_seen = True
        self._forward_logs()
        if pull is not None and self.pull_settings_at_start:
            pulled = await pull()
            if pulled is not PULL_FAILED:
                self.telemetry.configure(pulled)
        await self.telemetry.start()
        self.ready.set()
        if self.parent_pid:
            self._spawn(self._exit_with_parent(self.parent_pid))
        log.info("dx-lsp-telemetry %s ready; data in %s", __version__, self.telemetry.paths.home)
        # pygls loads when a message needs it (a command, a settings change, shutdown): its
        # import holds the interpreter for a third of a second, long for a waiting answer

    def _settings(self, params: Any) -> bool:
        """New settings, as the push model sends them; a bare nudge (the pull model) needs
        a request to the editor, which pygls sends."""
        settings = params.get("settings") if isinstance(params, dict) else None
        if not (isinstance(settings, dict) and SECTION in settings):
            return False
        self.telemetry.configure(settings)
        return True

    def _shutdown(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        async def stop() -> None:
            await self.telemetry.stop()
            reply(msg_id, {"result": None})

        self._dispatcher.shutting_down = True  # from now on every request is refused
        self._spawn(stop())
        return True

    def _exit(self, params: Any) -> bool:
        """Gone now: the answers written so far, the ledger synced, nothing waited for."""
        self._dispatcher.writer.flush()
        with contextlib.suppress(OSError):
            self.telemetry.sync_to_disk()
        hard_exit(0)
        return True

    async def until_ready(self, wait: float) -> None:
        """A request sent right after `initialize` waits (briefly) for the settings to apply."""
        if not self.ready.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.ready.wait(), wait)

    def _forward_logs(self) -> None:
        """From now on this package's log records also reach the editor's output channel."""
        loop = asyncio.get_running_loop()

        def send(level: int, text: str) -> None:
            params = {"type": _LOG_TYPES.get(level, _LOG), "message": text}
            self._dispatcher.notify("window/logMessage", params)

        def schedule(fn: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed while a thread logged
                loop.call_soon_threadsafe(fn)

        logging.getLogger("dx_lsp_telemetry").addHandler(
            ForwardToEditor(send, schedule, os.environ.get(TOKEN_ENV))
        )

    async def _exit_with_parent(self, pid: int) -> None:
        await wait_for_exit(pid)
        log.warning("the editor (process %d) is gone; exiting", pid)
        await self.telemetry.stop()
        hard_exit(0)

    # -- what the transport answers itself ---------------------------------------------

    def _record(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        if not self.ready.is_set():  # racing `initialized`: waits for the settings, in order
            retry = lambda: self._record(msg_id, params, reply)  # noqa: E731
            self._spawn(self._when_ready(msg_id, reply, retry))
            return True
        try:
            self.telemetry.submit_record(params, lambda outcome: reply(msg_id, recorded(outcome)))
        except EventError as exc:
            reply(msg_id, error(INVALID_PARAMS, str(exc)))
        return True

    def _status(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        return self._answer_when_ready(msg_id, reply, self.telemetry.status, "no status")

    def _forward_take(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        limit = MAX_BATCH
        if isinstance(params, dict) and params.get("limit") is not None:
            limit = params["limit"]
        if not isinstance(params, (dict, type(None))) or not _count(limit, 1, MAX_BATCH):
            got = show(params if not isinstance(params, dict) else limit, 80)
            reply(msg_id, error(INVALID_PARAMS, f"limit: expected 1 to {MAX_BATCH}, got {got}"))
            return True
        return self._answer_when_ready(
            msg_id, reply, lambda: self.telemetry.forward_take(limit), "no batch to forward"
        )

    def _forward_done(self, msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        problem = None
        if not isinstance(params, dict):
            problem = f"params: expected an object with batch and delivered, got {show(params, 80)}"
        elif not _count(params.get("batch"), 0, 2**53):
            got = show(params.get("batch"), 80)
            problem = f"batch: expected the batch number forwardTake gave, got {got}"
        elif not _count(params.get("delivered"), 0, MAX_BATCH):
            problem = (
                f"delivered: expected 0 to {MAX_BATCH}, got {show(params.get('delivered'), 80)}"
            )
        elif (text := params.get("problem")) is not None and not (
            isinstance(text, str) and len(text) <= 500 and is_unicode(text)
        ):
            problem = (
                f"problem: expected null or at most 500 characters of text, got {show(text, 80)}"
            )
        if problem is not None:
            reply(msg_id, error(INVALID_PARAMS, problem))
            return True
        assert isinstance(params, dict)
        return self._answer_when_ready(
            msg_id,
            reply,
            lambda: self.telemetry.forward_done(
                params["batch"], params["delivered"], params.get("problem") or None
            ),
            "the forwarded batch was not settled",
        )

    def _answer_when_ready(
        self,
        msg_id: Any,
        reply: stdio.Reply,
        work: Callable[[], Awaitable[Any]],
        failed: str = "not done",
    ) -> bool:
        """`work`'s result as the answer, once `initialized` is done (waiting briefly for it)."""

        async def answer() -> None:
            try:
                reply(msg_id, {"result": await work()})
            except NotAllowed as exc:
                reply(msg_id, error(REQUEST_FAILED, str(exc)))
            except Exception as exc:
                log.exception("%s", failed)
                reply(msg_id, error(INTERNAL_ERROR, f"{failed}: {type(exc).__name__}"))

        if self.ready.is_set():
            self._spawn(answer())
        else:
            self._spawn(self._when_ready(msg_id, reply, lambda: self._spawn(answer())))
        return True

    async def _when_ready(self, msg_id: Any, reply: stdio.Reply, then: Callable[[], Any]) -> None:
        """A request that came before `initialized` was done waits for it (briefly)."""
        await self.until_ready(READY_WAIT_SECONDS)
        if self.ready.is_set():
            then()
        else:
            reply(msg_id, error(NOT_INITIALIZED, "not initialized: send initialize, initialized"))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def recorded(outcome: dict[str, Any] | BaseException) -> dict[str, Any]:
    """A recordUsage answer: its result, or the error that stopped it."""
    if not isinstance(outcome, BaseException):
        return {"result": outcome}
    if isinstance(outcome, LedgerError):
        return error(INTERNAL_ERROR, f"not recorded: {outcome}")
    log.error("recordUsage failed", exc_info=outcome)
    return error(INTERNAL_ERROR, f"not recorded: {type(outcome).__name__}")


def _count(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
