"""An OTLP/HTTP capture server on 127.0.0.1: every POST body (de-chunked, gunzipped) is kept
and, given a folder, saved as `NNNN-<signal>.json` (`.pb` for protobuf), in arrival order.
It answers as a collector does: 200 with `{}` (an empty body for protobuf)."""

from __future__ import annotations

import json
import threading
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

    def json(self) -> Any:
        return json.loads(self.body)


class OtlpCapture(LoopbackServer):
    def __init__(self, folder: Path | None = None, *, port: int = 0) -> None:
        super().__init__(_Handler, port)
        self.folder = folder
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


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        capture: OtlpCapture = self.server.owner  # type: ignore[attr-defined]
        content_type = self.headers.get("Content-Type", "")
        try:
            body = read_body(self)
        except BodyError as e:
            self.send_bytes(400, json.dumps({"message": str(e)}).encode(), "application/json")
            return
        signal = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        capture.keep(Export(signal, content_type, body, self.headers.get("User-Agent", "")))
        if "protobuf" in content_type:
            self.send_bytes(200, b"", "application/x-protobuf")
        else:
            self.send_bytes(200, b"{}", "application/json")
