"""The plumbing both loopback servers share: a threaded HTTP/1.1 server on 127.0.0.1 in a
background thread, and request bodies read the way real exporters send them (Content-Length,
chunked transfer encoding, gzip)."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

#: no real request of these tools comes near this; a bigger one is a bug worth seeing
MAX_BODY = 64 * 1024 * 1024


class BodyError(ValueError):
    """A request body that cannot be read as HTTP says it should be."""


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, de-chunked and gunzipped. Gemini CLI's exporter sends chunked
    bodies, which `http.server` does not decode by itself."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        raw = _read_chunked(handler)
    else:
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BodyError(f"body of {length} bytes is over {MAX_BODY}")
        raw = handler.rfile.read(length)
    if handler.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = gzip.decompress(raw)
    return raw


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = handler.rfile.readline(1024)
        if not size_line:
            raise BodyError("connection closed inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise BodyError(f"chunked body over {MAX_BODY} bytes")
        parts.append(handler.rfile.read(size))
        handler.rfile.readline(1024)  # the CRLF after each chunk


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (the tools' clients reuse connections), no access log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


_Server = TypeVar("_Server", bound="LoopbackServer")


class LoopbackServer:
    """A `ThreadingHTTPServer` on 127.0.0.1 (port 0: any free one), served from a daemon
    thread; a context manager that stops it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self: _Server) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
