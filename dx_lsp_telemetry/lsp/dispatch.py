"""What each message from the editor gets, before pygls sees it.

Every message is classified before pygls sees it, since pygls trusts its peer: each request
(a usable id and a method) gets exactly one answer, a malformed message JSON-RPC's -32700 or
-32600 (with id null when it has no usable id), a method this sidecar does not serve -32601;
only the methods it serves reach pygls, each in a clean envelope. What needs no answer and is
wrong (an unknown notification, a response to nothing) is logged, throttled, and dropped.

Well-formed messages go to pygls unchanged, except where the sidecar registered a fast path:
`dxTelemetry/recordUsage` once the sidecar is ready goes straight to the recorder, without a
task, a converter and a reply object each, which is most of their cost at a thousand a second.
pygls itself (a third of a second to import) loads on a thread when a message needs it;
messages for it wait, in order, until it is there (`session.py` serves the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.lsp.framing import ReplyWriter, TooLarge, frame
from dx_lsp_telemetry.util.logs import Throttle
from dx_lsp_telemetry.util.shown import show

if TYPE_CHECKING:
    from pygls.exceptions import JsonRpcException
    from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)

#: JSON-RPC 2.0's error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CANCEL_REQUEST = "$/cancelRequest"

Reply = Callable[[Any, dict[str, Any]], None]
#: a fast path takes (id, params, reply) and returns True if it answers the request itself
FastPath = Callable[[Any, Any, Reply], bool]


def _usable_id(msg_id: Any) -> bool:
    """LSP's ids are integers and strings; JSON-RPC's null, floats, bools are not usable."""
    return isinstance(msg_id, str) or _is_int(msg_id)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: makes the pygls server on the loop, once `Prepare` has imported it on a thread
Loader = Callable[["Dispatcher"], "JsonRPCProtocol"]
Prepare = Callable[[], None]


class Dispatcher:
    """Checks each message's envelope, answers what is malformed, passes the rest on: to a
    fast path, or to pygls, which `load_soon` loads on a thread (messages for it wait,
    in order; while any wait, every message does)."""

    def __init__(
        self,
        writer: ReplyWriter,
        load: Loader,
        *,
        prepare: Prepare = lambda: None,
        methods: Mapping[str, bool] | None = None,
    ) -> None:
        self.writer = writer
        self._load = load
        self._prepare = prepare
        self._protocol: JsonRPCProtocol | None = None
        self._loading = False
        self._waiting: list[dict[str, Any]] = []
        self.fast_paths: dict[str, FastPath] = {}
        #: notifications taken before pygls: True if taken
        self.fast_notifications: dict[str, Callable[[Any], bool]] = {}
        #: called after each read of stdin is handled (the recorder writes what it queued)
        self.after_batch: list[Callable[[], None]] = []
        #: the methods served, each True for a request, False for a notification; None: all
        self.methods = methods
        #: `shutdown` was received: requests are refused until `exit`
        self.shutting_down = False
        self._throttle = Throttle()

    def load_soon(self) -> None:
        """Import pygls on a thread (the loop goes on serving), then hand it what waits."""
        if self._protocol is not None or self._loading:
            return
        self._loading = True
        loop = asyncio.get_running_loop()

        def imported() -> None:
            try:
                self._prepare()  # imports only: the thread touches nothing else
            except Exception:
                log.exception("cannot load the LSP server")
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self._install)

        threading.Thread(target=imported, name="dx-load", daemon=True).start()

    def _install(self) -> None:
        self._protocol = self._load(self)
        # pygls and lsprotocol bring a few hundred thousand objects that live as long as the
        # process: out of the garbage collector's way, or each full collection walks them all
        gc.freeze()
        waiting, self._waiting = self._waiting, []
        for message in waiting:
            try:
                self._dispatch(message)
            except Exception:
                log.exception("cannot handle a message")

    def _shut_down(self) -> bool:
        return self.shutting_down or (self._protocol is not None and self._protocol._shutdown)

    def notify(self, method: str, params: Any) -> None:
        self.writer.write(frame({"jsonrpc": "2.0", "method": method, "params": params}))

    def reply(self, msg_id: Any, message: dict[str, Any]) -> None:
        self.writer.write(frame({"jsonrpc": "2.0", "id": msg_id, **message}))

    def error(self, msg_id: Any, code: int, text: str) -> None:
        self.reply(msg_id, {"error": {"code": code, "message": text}})

    def warn(self, kind: str, text: str) -> None:
        """A warning about what the client sent, a few of each kind (it may send thousands)."""
        n = self._throttle(kind)
        if n is not None:
            log.warning("%s%s", text, f" ({n} so far)" if n > 1 else "")

    def handle(self, item: bytes | TooLarge | str) -> None:
        if isinstance(item, TooLarge):
            self.error(None, INVALID_REQUEST, f"message of {item.length} bytes is too large")
            return
        if isinstance(item, str):
            self.warn("framing", f"stdin: skipped {item}")
            return
        try:  # LSP's bodies are UTF-8: json.loads(bytes) would also take UTF-16 and a BOM
            message = json.loads(item.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 is a ValueError too
            self.error(None, PARSE_ERROR, f"not JSON: {str(exc)[:200]}")
            return
        self._dispatch(message)

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            self.error(None, INVALID_REQUEST, "expected one JSON-RPC message object (no batches)")
            return
        if "method" not in message:
            if "result" in message or "error" in message or self._awaited(message.get("id")):
                self._response(message)  # never answered, whatever it holds
            else:
                self.error(None, INVALID_REQUEST, "neither a request, a notification nor a reply")
            return
        has_id = "id" in message
        msg_id = message["id"] if has_id else None
        if has_id and not _usable_id(msg_id):
            self.error(
                None, INVALID_REQUEST, f"id must be a string or an integer, got {show(msg_id, 60)}"
            )
            return
        method = message["method"]
        if message.get("jsonrpc") != "2.0":
            self.error(msg_id, INVALID_REQUEST, 'expected "jsonrpc": "2.0"')
            return
        if not isinstance(method, str):
            self.error(msg_id, INVALID_REQUEST, f"method must be a string, got {show(method, 60)}")
            return
        if self._shut_down() and method != "exit":
            if has_id:
                self.error(msg_id, INVALID_REQUEST, "the server is shutting down")
            return
        is_request = self.methods.get(method) if self.methods is not None else has_id
        if is_request is None:  # a method this sidecar does not serve
            if has_id:
                self.error(msg_id, METHOD_NOT_FOUND, f"no such method: {show(method, 100)}")
            elif not method.startswith("$/"):  # LSP: `$/` notifications may be ignored
                self.warn(
                    "unknown", f"ignored a notification of a method not served: {show(method, 100)}"
                )
            return
        if has_id and not is_request:
            self.error(msg_id, INVALID_REQUEST, f"{method} is a notification: it takes no id")
            return
        if not has_id and is_request:
            self.warn(method, f"ignored {method} without an id: a request needs one to be answered")
            return
        params = message.get("params")
        if self._waiting:  # order: nothing overtakes what waits for pygls
            self._waiting.append(message)
            return
        if method == CANCEL_REQUEST and not self._cancels_a_request(params):
            return  # a request already answered, or none: routine, nothing to do
        if has_id:
            fast = self.fast_paths.get(method)
            if fast is not None and fast(msg_id, params, self.reply):
                return
        else:
            taken = self.fast_notifications.get(method)
            if taken is not None and taken(params):
                return
        if self._protocol is None:
            self._waiting.append(message)
            self.load_soon()
            return
        if method == "initialized":
            params = {}  # LSP's InitializedParams are empty: whatever came means nothing
        envelope: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if has_id:
            envelope["id"] = msg_id
        self._to_pygls(envelope, msg_id)

    def _cancels_a_request(self, params: Any) -> bool:
        """True if `params` name a request of the client's still in flight."""
        target = params.get("id") if isinstance(params, dict) else None
        protocol = self._protocol
        return (
            protocol is not None
            and _usable_id(target)
            and target in protocol._request_futures
            and target not in protocol._result_types  # not one of the sidecar's own requests
        )

    def _awaited(self, msg_id: Any) -> bool:
        """True if `msg_id` is that of a request the sidecar sent and awaits the reply to."""
        return (
            self._protocol is not None
            and _usable_id(msg_id)
            and msg_id in self._protocol._result_types
        )

    def _response(self, message: dict[str, Any]) -> None:
        """A reply to one of the sidecar's requests (`workspace/configuration`). A malformed
        one still settles the request, as an error: whoever awaits it must not wait forever."""
        msg_id = message.get("id")
        if not self._awaited(msg_id):
            self.warn("reply", f"ignored a reply to no request of the sidecar: {show(msg_id, 60)}")
            return
        error = message.get("error")
        if message.get("jsonrpc") == "2.0" and ("result" in message) != ("error" in message):
            if "result" in message:
                envelope = {"jsonrpc": "2.0", "id": msg_id, "result": message["result"]}
                if self._to_pygls(envelope, None, quiet=True):
                    return
            elif (
                isinstance(error, dict)
                and _is_int(error.get("code"))
                and isinstance(error.get("message"), str)
            ):
                fields = {k: error[k] for k in ("code", "message", "data") if k in error}
                envelope = {"jsonrpc": "2.0", "id": msg_id, "error": fields}
                if self._to_pygls(envelope, None, quiet=True):
                    return
        self.warn("bad reply", f"a malformed reply to the sidecar's request {show(msg_id, 60)}")
        malformed = {"code": INTERNAL_ERROR, "message": "the client's reply was malformed"}
        self._to_pygls({"jsonrpc": "2.0", "id": msg_id, "error": malformed}, None)

    def _to_pygls(self, message: dict[str, Any], request_id: Any, *, quiet: bool = False) -> bool:
        protocol = self._protocol
        assert protocol is not None  # messages for pygls wait until it is loaded
        from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

        try:
            structured = protocol.structure_message(message)
        except JsonRpcException as exc:
            if quiet:
                return False
            method = message.get("method")
            if request_id is not None:
                code = INVALID_PARAMS if isinstance(exc, JsonRpcInvalidParams) else exc.code
                self.error(request_id, code, f"invalid params for {method}: {_why(exc)}")
            else:
                self.warn(str(method), f"ignored a {method} notification: {_why(exc)}")
            return False
        protocol.handle_message(structured)
        return True


def _why(exc: JsonRpcException) -> str:
    """What cattrs found wrong, in its words (`... @ $.params.position.line`), bounded."""
    import cattrs  # pygls's own dependency; only needed once something is wrong

    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        reasons = cattrs.transform_error(cause)
        return show("; ".join(reasons[:3]), 300)[1:-1]
    return show(exc.message or "invalid params", 300)[1:-1]


class _AnsweredByDispatcher(logging.Filter):
    """pygls logs a traceback for each message its converter refuses; the dispatcher answers
    those itself (-32602) or logs one throttled line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to deserialize message")
