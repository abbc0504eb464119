"""A real HTTP server on 127.0.0.1 that plays DX's `aiToolMetrics.push` strictly.

It checks the bearer token, the JSON body and every field's type, answers with DX's
`ok`/`error` envelope, and can be scripted to fail the ways DX (or the network) can.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PUSH_PATH = "/api/aiToolMetrics.push"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "spend_cents",
)


@dataclass
class Script:
    """What to do with the next push instead of storing it.

    kind: "status" (answer `status` with `body`/`headers`; a `bytes` body is sent as it is,
    as `text/html` unless `headers` name a Content-Type), "reset" (read the request, then
    reset the connection), "slow" (answer after `delay` seconds), "garbage" (200, not JSON),
    "ok_false" (200 with ok: false), "big" (200 with `ok: true` padded to `size` bytes of
    JSON, written piece by piece for as long as the client reads).
    """

    kind: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    store: bool = False  # also store the record (DX processed it, then failed to answer)
    size: int = 0


@dataclass
class Received:
    headers: dict[str, str]
    body: Any
    answered: int | None
    method: str = "POST"
    #: time.monotonic() when the request was read, and when its answer was sent
    at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    #: body bytes written (a "big" answer stops when the client stops reading)
    sent_bytes: int = 0


class _CountingServer(ThreadingHTTPServer):
    """Counts every accepted connection, even one that never sends a full request."""

    daemon_threads = True
    connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1  # only the serve_forever thread calls this
        return True


class FakeDx:
    def __init__(
        self, token: str = "test-token-d41d8cd98f00", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.token = token
        self.stored: list[dict[str, Any]] = []
        self.requests: list[Received] = []
        self.script: deque[Script] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._not_allowed(self)

            do_PUT = do_DELETE = do_PATCH = do_GET

        self.server = _CountingServer((host, port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeDx:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def then(self, *scripts: Script) -> FakeDx:
        with self._lock:
            self.script.extend(scripts)
        return self

    def stored_keys(self) -> list[tuple[str, str, str]]:
        return [(r["email"], r["date"], r["tool"]) for r in self.stored]

    @property
    def connections(self) -> int:
        """TCP connections accepted so far, whether or not a request followed."""
        return self.server.connections

    def requests_for(self, date: str) -> list[Received]:
        return [r for r in self.requests if isinstance(r.body, dict) and r.body.get("date") == date]

    # -- handling -------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        received = Received({k.lower(): v for k, v in h.headers.items()}, None, None)
        with self._lock:
            self.requests.append(received)
            script = self.script.popleft() if self.script else None
        if h.path != PUSH_PATH:
            return self._answer(h, received, 404, {"ok": False, "error": "not_found"})
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(h, received, 401, {"ok": False, "error": "not_authed"})
        if not (h.headers.get("Content-Type") or "").startswith("application/json"):
            return self._answer(
                h,
                received,
                422,
                {"ok": False, "error": "invalid_arguments", "message": "Content-Type must be JSON"},
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(
                h,
                received,
                422,
                {"ok": False, "error": "invalid_arguments", "message": "body is not JSON"},
            )
        received.body = body
        problem = validate_record(body)
        if problem:
            return self._answer(
                h, received, 422, {"ok": False, "error": "invalid_arguments", "message": problem}
            )
        if script is not None:
            return self._scripted(h, received, body, script)
        record = {"id": str(uuid.uuid4()), **body}
        with self._lock:
            self.stored.append(body)
        self._answer(h, received, 200, {"ok": True, **record})

    def _scripted(
        self, h: BaseHTTPRequestHandler, received: Received, body: Any, s: Script
    ) -> None:
        if s.store:
            with self._lock:
                self.stored.append(body)
        if s.kind == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        if s.kind == "slow":
            time.sleep(s.delay)
            self._answer(h, received, 200, {"ok": True, "id": str(uuid.uuid4()), **body})
            return
        if s.kind == "garbage":
            self._answer_raw(h, received, 200, b"<html>oops</html>", "text/html", {})
            return
        if s.kind == "ok_false":
            self._answer(h, received, 200, s.body or {"ok": False, "error": "invalid_arguments"})
            return
        if s.kind == "big":
            self._answer_big(h, received, s.size)
            return
        if isinstance(s.body, bytes):
            headers = {k: v for k, v in s.headers.items() if k.lower() != "content-type"}
            content_type = next(
                (v for k, v in s.headers.items() if k.lower() == "content-type"), "text/html"
            )
            self._answer_raw(h, received, s.status, s.body, content_type, headers)
            return
        self._answer(
            h,
            received,
            s.status,
            s.body if s.body is not None else {"ok": False, "error": "x"},
            s.headers,
        )

    def _answer(
        self,
        h: BaseHTTPRequestHandler,
        received: Received,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._answer_raw(
            h, received, status, json.dumps(body).encode(), "application/json", headers or {}
        )

    def _answer_raw(
        self,
        h: BaseHTTPRequestHandler,
        received: Received,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str],
    ) -> None:
        received.answered = status
        received.answered_at = time.monotonic()
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        received.sent_bytes = len(data)

    def _answer_big(self, h: BaseHTTPRequestHandler, received: Received, size: int) -> None:
        """200 `{"ok": true, "id": "big", "pad": "xxx..."}` of `size` bytes, 64 KiB a write."""
        head, tail = b'{"ok": true, "id": "big", "pad": "', b'"}'
        received.answered = 200
        received.answered_at = time.monotonic()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(size))
        h.end_headers()
        piece = b"x" * 65536
        left = size - len(head) - len(tail)
        try:
            h.wfile.write(head)
            received.sent_bytes = len(head)
            while left > 0:
                chunk = piece[:left]
                h.wfile.write(chunk)  # blocks while the client does not read
                received.sent_bytes += len(chunk)
                left -= len(chunk)
            h.wfile.write(tail)
            received.sent_bytes += len(tail)
        except OSError:
            h.close_connection = True  # the client hung up without reading it all

    def _not_allowed(self, h: BaseHTTPRequestHandler) -> None:
        """Any other method is recorded too: a followed redirect may arrive as a GET."""
        received = Received({k.lower(): v for k, v in h.headers.items()}, None, None, h.command)
        with self._lock:
            self.requests.append(received)
        self._answer(h, received, 405, {"ok": False, "error": "method_not_allowed"})


def validate_record(body: Any) -> str | None:
    """DX's documented field rules, strictly: what is wrong with `body`, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for name, kind in (("email", str), ("date", str), ("tool", str)):
        if not isinstance(body.get(name), kind) or not body[name]:
            return f"{name} is required and must be a non-empty string"
    if not isinstance(body.get("is_active"), bool):
        return "is_active is required and must be a boolean"
    if not _DATE.fullmatch(body["date"]):
        return "date must be YYYY-MM-DD"
    for name in _INT_FIELDS:
        if name in body and (
            isinstance(body[name], bool) or not isinstance(body[name], int) or body[name] < 0
        ):
            return f"{name} must be a non-negative integer"
    if "metrics" in body and not isinstance(body["metrics"], dict):
        return "metrics must be an object"
    known = {"email", "date", "is_active", "tool", "metrics", "model_breakdowns", *_INT_FIELDS}
    unknown = set(body) - known
    if unknown:
        return f"unknown fields: {sorted(unknown)}"
    if "model_breakdowns" in body:
        models = body["model_breakdowns"]
        if not isinstance(models, list):
            return "model_breakdowns must be an array"
        names = [m.get("model") if isinstance(m, dict) else None for m in models]
        if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
            return "model_breakdowns: each model must be a unique non-empty string"
    return None
