"""A small HTTP/1.1 server on asyncio streams, for the OTLP receiver only.

Why not `http.server`: it serves each connection on a thread of its own (or one at a time),
outside the sidecar's event loop, where events are recorded and answered; it does not
de-chunk request bodies (Claude Code 2.1.191-2.1.211 sends chunked ones); and it has no bound on
a slow client's time or on a body's size. This one runs on the sidecar's loop, reads a request
only as far as its checks allow (a refused request's body is never read), and bounds
everything: the head's size, the body's size (before and after gzip), each wait, the number of
connections. It serves persistent connections (HTTP/1.1 keep-alive), `Content-Length` and
`chunked` bodies, and `Expect: 100-continue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Optional

from dx_lsp_telemetry.util.logs import Throttle

log = logging.getLogger(__name__)
_throttle = Throttle()

#: the request line and headers together
MAX_HEAD_BYTES = 16 << 10
#: a request body as sent (compressed or not); `body.MAX_DECODED_BYTES` bounds it decoded
MAX_BODY_BYTES = 4 << 20
#: a kept-alive connection may wait this long for its next request
IDLE_SECONDS = 30.0
#: a request's head, once its first byte came, and its body must arrive within these
HEAD_SECONDS = 10.0
BODY_SECONDS = 30.0
WRITE_SECONDS = 10.0
MAX_CONNECTIONS = 32

_REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
#: google.rpc.Code of each refusal (OTLP's error bodies are `google.rpc.Status`)
_RPC_CODES = {400: 3, 403: 7, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 421: 7, 431: 8}
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass
class Request:
    method: str
    path: str
    version: str
    #: names in lower case; a name sent twice is joined with ", " (Content-Length refused)
    headers: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Response:
    status: int
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: close the connection after this answer (the request's body was not read)
    close: bool = False


def error(status: int, message: str, *, close: bool = False, **headers: str) -> Response:
    """A refusal with a `google.rpc.Status` JSON body naming what was wrong."""
    body = json.dumps({"code": _RPC_CODES.get(status, 13), "message": message})
    extra = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return Response(status, body.encode(), headers=extra, close=close)


#: what the server asks before reading a body: a refusal, or None to read it
Check = Callable[[Request], Optional[Response]]
Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class HttpServer:
    def __init__(self, check: Check, handler: Handler) -> None:
        self._check = check
        self._handler = handler
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Listen; raises OSError as `bind` does (EADDRINUSE: another program has the port)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEAD_BYTES, reuse_address=True
        )

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(Exception):  # the port is free once close() returns
            await asyncio.wait_for(server.wait_closed(), 0.5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CONNECTIONS:
            await _send(writer, error(503, "too many connections", close=True, Retry_After="1"))
            await _close(writer)
            return
        self._connections.add(task)
        try:
            await self._requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            if (n := _throttle("connection")) is not None:
                log.exception("otlp: a connection failed (%d so far)", n)
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                first = await asyncio.wait_for(reader.read(1), IDLE_SECONDS)
            except asyncio.TimeoutError:
                return  # an idle kept-alive connection
            if first in (b"\r", b"\n"):
                continue  # a stray line break between requests (RFC 9112 lets it pass)
            if not first:
                return  # closed by the client between requests
            try:
                request = await asyncio.wait_for(_read_head(first, reader), HEAD_SECONDS)
                refusal = self._check(request)
                if refusal is not None:  # its body is left unread: the connection is done
                    raise _Refused(refusal)
                if request.headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.body = await asyncio.wait_for(_read_body(request, reader), BODY_SECONDS)
            except _Refused as refused:
                refused.response.close = True
                await _send(writer, refused.response)
                return
            except asyncio.TimeoutError:
                await _send(writer, error(408, "the request was not sent in time", close=True))
                return
            try:
                response = await self._handler(request)
            except Exception:  # a bug: said once in a while, answered (never re-sent: 500)
                if (n := _throttle("handler")) is not None:
                    log.exception("otlp: a request failed (%d so far)", n)
                response = error(500, "the receiver failed on this request; see its log")
            keep = not response.close and _keeps_alive(request)
            response.close = not keep
            await _send(writer, response)
            if not keep:
                return


def _keeps_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def _read_head(first: bytes, reader: asyncio.StreamReader) -> Request:
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _Refused(
            error(431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes", close=True)
        ) from None
    except asyncio.IncompleteReadError:
        raise ConnectionResetError("closed in the middle of a request") from None
    if len(head) > MAX_HEAD_BYTES:
        raise _Refused(error(431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"))
    try:
        text = head[:-4].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover (latin-1 decodes every byte)
        raise _Refused(error(400, "unreadable request head")) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[0].isalpha():
        raise _Refused(error(400, "expected a request line like 'POST /v1/logs HTTP/1.1'"))
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN:
            raise _Refused(error(400, "a malformed header line"))
        name = name.lower()
        value = value.strip(" \t")
        if name in headers:
            if name in ("content-length", "host", "content-type", "transfer-encoding"):
                raise _Refused(error(400, f"the {name} header was sent twice"))
            value = f"{headers[name]}, {value}"
        headers[name] = value
    path = target.split("?", 1)[0]
    return Request(method, path, version, headers)


async def _read_body(request: Request, reader: asyncio.StreamReader) -> bytes:
    coding = request.header("transfer-encoding")
    length = request.header("content-length")
    if coding is not None:
        if length is not None:  # which one frames the body is ambiguous (request smuggling)
            raise _Refused(error(400, "both Transfer-Encoding and Content-Length were sent"))
        if coding.lower() != "chunked":
            raise _Refused(error(501, f"Transfer-Encoding {coding[:40]!r} is not supported"))
        return await _read_chunked(reader)
    if length is None:
        if request.method == "POST":
            raise _Refused(error(411, "a POST needs Content-Length or chunked Transfer-Encoding"))
        return b""
    if not length.isdigit() or len(length) > 18:
        raise _Refused(error(400, f"Content-Length {length[:40]!r} is not a number"))
    size = int(length)
    if size > MAX_BODY_BYTES:
        raise _Refused(_too_large())
    return await reader.readexactly(size)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await _line(reader)
        size_text = line.split(b";", 1)[0].strip()
        try:
            if not size_text or len(size_text) > 16:
                raise ValueError
            size = int(size_text, 16)
        except ValueError:
            raise _Refused(error(400, "a malformed chunk size in a chunked body")) from None
        if size == 0:
            trailers = 0
            while await _line(reader):  # trailers, up to the empty line: read, not kept
                trailers += 1
                if trailers > 64:
                    raise _Refused(error(431, "too many trailer fields"))
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise _Refused(_too_large())
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise _Refused(error(400, "a chunk of a chunked body is longer than its size"))


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except asyncio.LimitOverrunError:
        raise _Refused(error(400, "a line of a chunked body is too long")) from None


def _too_large() -> Response:
    return error(413, f"the body exceeds {MAX_BODY_BYTES} bytes; export smaller batches")


async def _send(writer: asyncio.StreamWriter, response: Response) -> None:
    head = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if response.close:
        head.append("Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
    await asyncio.wait_for(writer.drain(), WRITE_SECONDS)


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)
