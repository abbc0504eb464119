"""The LSP face of the sidecar: thin handlers that translate LSP into `Telemetry` calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from cattrs import Converter
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage
from pygls.protocol import default_converter as pygls_default_converter

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.lsp import stdio
from dx_lsp_telemetry.lsp.lsp_names import (
    FLUSH_NOW,
    MARK_PUSHED,
    RESEND_DAY,
    SERVER_NAME,
)
from dx_lsp_telemetry.lsp.session import PULL_FAILED, READY_WAIT_SECONDS, Session, error
from dx_lsp_telemetry.push.pusher import PushError
from dx_lsp_telemetry.settings.settings import SECTION
from dx_lsp_telemetry.util.logs import Throttle
from dx_lsp_telemetry.util.shown import is_unicode, show

log = logging.getLogger(__name__)

#: an editor that does not answer `workspace/configuration` must not hold a handler forever
PULL_TIMEOUT_SECONDS = 10.0
#: LSP's RequestFailed: the request was fine, the operation was not possible.
REQUEST_FAILED = -32803
INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32600, -32602, -32603

_LOG_TYPES = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


def raw_json_converter() -> Converter:
    """Custom params stay plain JSON: pygls's namedtuples would rename keys like `"bad key!"`."""
    converter: Converter = pygls_default_converter()  # type: ignore[no-untyped-call]
    for cls in (JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage):
        converter.register_structure_hook(cls, lambda obj, cls: cls(**obj))
    return converter


class DxLanguageServer(LanguageServer):
    """pygls's server for what the session leaves to it (commands, settings changes,
    shutdown, and anything that comes before the sidecar is ready)."""

    def __init__(self, session: Session) -> None:
        super().__init__(
            SERVER_NAME,
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.None_,
            converter_factory=raw_json_converter,
            max_workers=1,  # never used: the transport reads stdin, handlers are async
        )
        self.session = session
        self.telemetry = session.telemetry
        self.throttle = Throttle()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Never a pop-up: errors go to the log only.

        A refused event (-32602) is the caller's business, answered to the caller alone: its
        message quotes the value sent, which may be a prompt or a path, so it is not logged.
        """
        if isinstance(error, JsonRpcInvalidParams):
            return
        if isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError):
            # e.g. re-sending a pushed day: answered to the caller, who may ask a thousand times
            if (n := self.throttle("refused")) is not None:
                log.info("refused: %s%s", error, f" ({n} refusals so far)" if n > 3 else "")
            return
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)


def create_server(session: Session) -> DxLanguageServer:
    server = DxLanguageServer(session)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: DxLanguageServer, params: types.InitializedParams) -> None:
        # only when the session cannot take it: the settings must be asked of the editor
        await ls.session.initialized(lambda: _pull_settings(ls))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: DxLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        # only the pull model's bare nudge: the session takes settings that come with it
        settings = await _pull_settings(ls)
        if settings is not PULL_FAILED:  # a failed read is no change to defaults
            ls.telemetry.configure(settings)

    @server.command(FLUSH_NOW)
    async def flush_now(ls: DxLanguageServer, *args: Any) -> dict[str, Any]:
        return await _command(ls, ls.telemetry.flush_now)

    @server.command(RESEND_DAY)
    async def resend_day(ls: DxLanguageServer, *args: Any) -> dict[str, Any]:
        day, tool = _day_and_tool(args)
        return await _command(ls, lambda: ls.telemetry.resend(day, tool))

    @server.command(MARK_PUSHED)
    async def mark_pushed(ls: DxLanguageServer, *args: Any) -> dict[str, Any]:
        day, tool = _day_and_tool(args)
        return await _command(ls, lambda: ls.telemetry.mark_pushed(day, tool))

    return server


def setup_transport(ls: DxLanguageServer, dispatcher: stdio.Dispatcher) -> None:
    """What the transport refuses itself: commands pygls would misread."""
    dispatcher.fast_paths[types.WORKSPACE_EXECUTE_COMMAND] = command_check(ls)


def command_check(ls: DxLanguageServer) -> stdio.FastPath:
    """`workspace/executeCommand` with params pygls would misread (a string of arguments
    becomes a list of characters) or refuse quoting all of them: refused here, named."""

    def check(msg_id: Any, params: Any, reply: stdio.Reply) -> bool:
        problem = None
        if not isinstance(params, dict):
            problem = f"params: expected an object with command and arguments, got {show(params)}"
        elif params.get("command") not in ls.protocol.fm.commands:
            known = ", ".join(sorted(ls.protocol.fm.commands))
            problem = f"command: expected one of {known}, got {show(params.get('command'))}"
        elif params.get("arguments") is not None and not isinstance(params["arguments"], list):
            problem = f"arguments: expected a list, got {show(params['arguments'])}"
        if problem is None:
            return False
        reply(msg_id, error(INVALID_PARAMS, problem))
        return True

    return check


async def _command(
    ls: DxLanguageServer, work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    await ls.session.until_ready(READY_WAIT_SECONDS)
    try:
        result = await work()
        return result
    except PushError as exc:
        raise JsonRpcException(str(exc), code=REQUEST_FAILED) from None


def _day_and_tool(args: tuple[Any, ...]) -> tuple[date, str]:
    """`[date, tool]` or `[{"date": ..., "tool": ...}]`."""
    if len(args) == 1 and isinstance(args[0], dict):
        args = (args[0].get("date"), args[0].get("tool"))
    if len(args) != 2:
        raise JsonRpcInvalidParams(f"expected the arguments date and tool, got {show(list(args))}")
    raw_day, tool = args
    try:
        day = (
            date.fromisoformat(raw_day) if isinstance(raw_day, str) and len(raw_day) == 10 else None
        )
    except ValueError:
        day = None
    if day is None:
        raise JsonRpcInvalidParams(f"date: expected YYYY-MM-DD, got {show(raw_day)}")
    if not isinstance(tool, str) or not 1 <= len(tool) <= 100 or not is_unicode(tool):
        raise JsonRpcInvalidParams(f"tool: expected 1 to 100 characters of text, got {show(tool)}")
    return day, tool


async def _pull_settings(ls: DxLanguageServer) -> Any:
    """The section from the editor; PULL_FAILED if it sent no usable answer in time."""
    try:
        values = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
            ),
            PULL_TIMEOUT_SECONDS,
        )
    except Exception as exc:
        if ls.throttle("pull") is not None:
            log.warning("cannot read the %s settings from the editor: %s", SECTION, exc)
        return PULL_FAILED
    if not isinstance(values, (list, tuple)):  # LSP: one value per item asked for
        if ls.throttle("pull") is not None:
            log.warning("the editor's %s settings came as %s", SECTION, show(values, 60))
        return PULL_FAILED
    return values[0] if values else None
