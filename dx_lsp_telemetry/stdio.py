"""LSP's base protocol over stdin/stdout, in front of pygls.

pygls's own stdio loop hands every header line and body to a thread pool (four thread hops
a message) and answers nothing it cannot parse. Here one thread reads stdin in large chunks
and hands whole messages to the event loop in batches; every request gets an answer, even a
malformed one (JSON-RPC's -32700 and -32600, with id null when it has none); replies written
during one turn of the loop leave in one write.

Well-formed messages go to pygls unchanged, except `dxTelemetry/recordUsage` once the
sidecar is ready: the recorder takes those directly (`fast_paths`), without a task, a
converter and a reply object each, which is most of their cost at a thousand a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)

#: JSON-RPC 2.0's error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
#: larger messages are skipped unread (an editor's biggest, the settings, is a few KiB)
MAX_MESSAGE = 8 << 20
MAX_HEADER = 8 << 10
READ_SIZE = 1 << 16

#: the id pygls's own answer to an `initialize` answered early goes out under, to be dropped
EARLY_ID = "dx-lsp-telemetry:initialize"

Reply = Callable[[Any, dict[str, Any]], None]
#: a fast path takes (id, params, reply) and returns True if it answers the request itself
FastPath = Callable[[Any, Any, Reply], bool]


class TooLarge:
    def __init__(self, length: int) -> None:
        self.length = length


class Frames:
    """Splits the byte stream into message bodies (or markers of what could not be read)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized body still to drop

    def feed(self, data: bytes) -> list[bytes | TooLarge | str]:
        """The complete items in `data` and what came before: bodies, TooLarge for a body
        skipped, a str naming a header that was not understood."""
        out: list[bytes | TooLarge | str] = []
        buf = self._buf
        buf += data
        while True:
            if self._skip:
                dropped = min(self._skip, len(buf))
                del buf[:dropped]
                self._skip -= dropped
                if self._skip:
                    return out
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER:  # not LSP framing: drop it, resynchronise later
                    out.append(f"{len(buf)} bytes without a header end")
                    del buf[:-3]
                return out
            length = _content_length(bytes(buf[:end]))
            if length is None:
                out.append(bytes(buf[:end]).decode("ascii", "replace")[:200])
                del buf[: end + 4]
                continue
            start = end + 4
            if length > MAX_MESSAGE:
                out.append(TooLarge(length))
                taken = min(length, len(buf) - start)
                del buf[: start + taken]
                self._skip = length - taken
                continue
            if len(buf) < start + length:
                return out
            out.append(bytes(buf[start : start + length]))
            del buf[: start + length]


def _content_length(header: bytes) -> int | None:
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


class ReplyWriter:
    """pygls's writer: what is written in one turn of the loop goes out in one write."""

    def __init__(self, stream: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._loop_thread = threading.get_ident()  # made on the loop's thread
        self.broken = False
        self._drop: bytes | None = None

    def drop_reply(self, msg_id: str) -> None:
        """Leave out the next reply to `msg_id` (pygls's, to a request answered already)."""
        self._drop = f'"id": {json.dumps(msg_id)}'.encode()

    def write(self, data: bytes) -> None:
        if self._drop is not None and self._drop in data:
            self._drop = None
            if b'"error"' in data:
                log.warning("initialize was answered, then refused: %s", data[-300:])
            return
        with self._lock:
            self._pending.append(data)
            first = len(self._pending) == 1
        if not first:
            return
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self.flush)
        else:  # waking the loop from another thread costs a write to its self-pipe
            self._loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        with self._lock:
            data, self._pending = b"".join(self._pending), []
        if not data or self.broken:
            return
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True  # the editor is gone; the reader sees stdin close too

    def close(self) -> None:
        self.flush()
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


Loader = Callable[["Dispatcher"], "JsonRPCProtocol"]


class Dispatcher:
    """Checks each message's envelope, answers what is malformed, passes the rest on; loads
    the LSP server with the first message that needs it."""

    def __init__(
        self, writer: ReplyWriter, load: Loader, early_initialize: Callable[[], dict[str, Any]]
    ) -> None:
        self.writer = writer
        self._load = load
        self._early_initialize = early_initialize
        self._protocol: JsonRPCProtocol | None = None
        self.fast_paths: dict[str, FastPath] = {}
        #: called after each chunk of messages read (the recorder writes what they queued)
        self.after_batch: list[Callable[[], None]] = []

    def reply(self, msg_id: Any, message: dict[str, Any]) -> None:
        self.writer.write(frame({"jsonrpc": "2.0", "id": msg_id, **message}))

    def error(self, msg_id: Any, code: int, text: str) -> None:
        self.reply(msg_id, {"error": {"code": code, "message": text}})

    def handle(self, item: bytes | TooLarge | str) -> None:
        if isinstance(item, TooLarge):
            self.error(None, INVALID_REQUEST, f"message of {item.length} bytes is too large")
            return
        if isinstance(item, str):
            log.warning("skipped a message whose header has no Content-Length: %r", item)
            return
        try:
            message = json.loads(item)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 is a ValueError too
            self.error(None, PARSE_ERROR, f"not JSON: {str(exc)[:200]}")
            return
        self._dispatch(message)

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            self.error(None, INVALID_REQUEST, "expected a JSON-RPC message object")
            return
        has_id = "id" in message
        msg_id = message.get("id")
        if has_id and (isinstance(msg_id, bool) or not isinstance(msg_id, (str, int))):
            self.error(
                None, INVALID_REQUEST, f"id must be a string or an integer: {msg_id!r}"[:300]
            )
            return
        method = message.get("method")
        if message.get("jsonrpc") != "2.0":
            if has_id and method is not None:
                self.error(msg_id, INVALID_REQUEST, 'expected "jsonrpc": "2.0"')
            return
        if method is None:
            if has_id:  # a reply to one of our requests (workspace/configuration)
                self._to_pygls(message, None)
            return
        if not isinstance(method, str):
            self.error(msg_id if has_id else None, INVALID_REQUEST, "method must be a string")
            return
        # params of the wrong shape are the handler's to refuse, naming them (-32602)
        params = message.get("params")
        if self._protocol is None:
            if method == "initialize" and has_id and isinstance(params, dict):
                # the answer depends on nothing the LSP library knows: it need not wait for it
                self.reply(msg_id, {"result": self._early_initialize()})
                self.writer.flush()
                self.writer.drop_reply(EARLY_ID)
                message["id"] = msg_id = EARLY_ID
            self._protocol = self._load(self)
        if self._protocol._shutdown and method != "exit":
            if has_id:
                self.error(msg_id, INVALID_REQUEST, "the server is shutting down")
            return
        if has_id:
            fast = self.fast_paths.get(method)
            if fast is not None and fast(msg_id, params, self.reply):
                return
        # JSON-RPC lets a message omit params; LSP's `initialized` has an empty object
        message["params"] = {} if method == "initialized" and params is None else params
        self._to_pygls(message, msg_id if has_id else None)

    def _to_pygls(self, message: dict[str, Any], request_id: Any) -> None:
        from pygls.exceptions import JsonRpcException  # loaded with the server, by now

        if self._protocol is None:
            self._protocol = self._load(self)
        try:
            structured = self._protocol.structure_message(message)
        except JsonRpcException as exc:
            if request_id is not None:
                self.error(request_id, exc.code, exc.message or "invalid params")
            else:
                log.warning("ignored a %s notification: invalid params", message.get("method"))
            return
        self._protocol.handle_message(structured)


def serve(load: Loader, early_initialize: Callable[[], dict[str, Any]]) -> None:
    """Run until stdin closes (or `exit`); `load` makes the LSP server when it is needed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writer = ReplyWriter(sys.stdout.buffer, loop)
        dispatcher = Dispatcher(writer, load, early_initialize)
        closed = asyncio.Event()
        frames = Frames()

        def deliver(data: bytes) -> None:
            for item in frames.feed(data):
                try:
                    dispatcher.handle(item)
                except Exception:
                    log.exception("cannot handle a message")
            for done in dispatcher.after_batch:
                try:
                    done()
                except Exception:
                    log.exception("cannot finish a batch of messages")

        _read_stdin(loop, deliver, closed.set)
        await closed.wait()
        writer.flush()

    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main())


def _read_stdin(
    loop: asyncio.AbstractEventLoop, deliver: Callable[[bytes], None], closed: Callable[[], None]
) -> None:
    """Read stdin on the event loop where it is a pipe the loop can watch (no thread to wake
    per message); elsewhere (Windows, a file) on a thread that hands chunks to the loop."""
    fd = 0

    def readable() -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            closed()
            return
        deliver(data)

    try:
        loop.add_reader(fd, readable)
        return
    except (NotImplementedError, OSError, ValueError):
        pass

    def read() -> None:
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                loop.call_soon_threadsafe(closed)
                return
            loop.call_soon_threadsafe(deliver, data)

    threading.Thread(target=read, name="dx-stdin", daemon=True).start()
