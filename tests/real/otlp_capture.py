"""An OTLP/HTTP capture server on 127.0.0.1: every POST body (de-chunked, gunzipped) is kept
and, given a folder, saved as `NNNN-<signal>.json` (`.pb` for protobuf), in arrival order.
It answers as a collector does: 200 with `{}` (an empty body for protobuf); or, given
`forward` (a receiver's base URL), it relays each body there and passes the receiver's answer
back to the tool, so a test holds the exact batches the tool sent (to send them again)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.real.loopback import BodyError, LoopbackServer, QuietHandler, read_body


@dataclass(frozen=True)
class Export:
    signal: str  #: logs, metrics, traces (the path's last part)
    content_type: str
    body: bytes
    user_agent: str
    path: str = "/v1/logs"
    #: the answer the tool got (a relayed one: the receiver's)
    status: int = 200

    def json(self) -> Any:
        return json.loads(self.body)


class OtlpCapture(LoopbackServer):
    def __init__(
        self, folder: Path | None = None, *, port: int = 0, forward: str | None = None
    ) -> None:
        super().__init__(_Handler, port)
        self.folder = folder
        self.forward = forward
        self.exports: list[Export] = []
        self._lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def keep(self, export: Export) -> None:
        with self._lock:
            self.exports.append(export)
            if self.folder is not None:
                suffix = "pb" if "protobuf" in export.content_type else "json"
                name = f"{len(self.exports):04d}-{export.signal}.{suffix}"
                (self.folder / name).write_bytes(export.body)

    def of(self, signal: str) -> list[Export]:
        with self._lock:
            return [e for e in self.exports if e.signal == signal]


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes, str]:
    """POST `body` as an exporter does; the answer's status, body and content type."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        capture: OtlpCapture = self.server.owner  # type: ignore[attr-defined]
        content_type = self.headers.get("Content-Type", "")
        try:
            body = read_body(self)
        except BodyError as e:
            self.send_bytes(400, json.dumps({"message": str(e)}).encode(), "application/json")
            return
        path = self.path.split("?", 1)[0]
        signal = path.rstrip("/").rsplit("/", 1)[-1]
        agent = self.headers.get("User-Agent", "")
        if capture.forward is not None:
            try:
                status, answer, answer_type = post(capture.forward + path, body, content_type)
            except OSError as e:  # the receiver is down: the exporter's retry path
                status, answer, answer_type = 503, str(e).encode(), "text/plain"
            capture.keep(Export(signal, content_type, body, agent, path, status))
            self.send_bytes(status, answer, answer_type or "application/json")
            return
        capture.keep(Export(signal, content_type, body, agent, path))
        if "protobuf" in content_type:
            self.send_bytes(200, b"", "application/x-protobuf")
        else:
            self.send_bytes(200, b"{}", "application/json")
