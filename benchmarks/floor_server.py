"""The floor: the least a Python stdio sidecar can cost per `dxTelemetry/recordUsage`.

Usage: python benchmarks/floor_server.py   (speaks LSP base-protocol framing on stdin/stdout)

It parses every message (`Content-Length` framing, a JSON body), answers `initialize` and
`shutdown` minimally, stops on `exit` or when stdin closes, and for `dxTelemetry/recordUsage`
appends the event's JSON line (as the ledger's: `type`, the event, `recorded_at`) to
`$DX_TELEMETRY_HOME/ledger/<UTC date>.jsonl` with one `os.write` per event, before answering
`{"recorded": true, ...}`, so an event is in the OS when acknowledged, as the sidecar promises.
No validation, no dedupe, no fsync, no index: whatever the real sidecar does beyond this is its
own cost. stdin is read in large chunks and the answers to one chunk go out in one write, as
any good minimal server would do.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from typing import Any

READ_SIZE = 1 << 20
NOT_FOUND = -32601


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError(f"no Content-Length in {header[:200]!r}")


class Floor:
    def __init__(self, home: str) -> None:
        self.ledger_dir = os.path.join(home, "ledger")
        os.makedirs(self.ledger_dir, exist_ok=True)
        self.files: dict[str, int] = {}  # UTC date -> an O_APPEND descriptor, opened once
        self.default_tool = ""
        self.stamp = ""
        self.done = False

    def ledger_fd(self, day: str) -> int:
        fd = self.files.get(day)
        if fd is None:
            path = os.path.join(self.ledger_dir, f"{day}.jsonl")
            fd = self.files[day] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return fd

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        method = message.get("method")
        request_id = message.get("id")
        if method == "dxTelemetry/recordUsage":
            params = message.get("params") or {}
            timestamp = params.get("timestamp") or self.stamp
            line = {"type": "usage", **params, "recorded_at": self.stamp}
            data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
            os.write(self.ledger_fd(timestamp[:10]), data)
            result: Any = {
                "recorded": True,
                "event_id": params.get("event_id") or str(uuid.uuid4()),
                "date": timestamp[:10],
                "tool": params.get("tool") or self.default_tool,
                "duplicate": False,
            }
        elif method == "initialize":
            options = (message.get("params") or {}).get("initializationOptions") or {}
            self.default_tool = str(options.get("tool") or "")
            result = {"capabilities": {}, "serverInfo": {"name": "floor", "version": "0"}}
        elif method == "shutdown":
            result = None
        elif method == "exit":
            self.done = True
            return None
        elif request_id is None:
            return None  # a notification (initialized, ...)
        else:
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": NOT_FOUND, "message": f"{method} is not in the floor"},
            }
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def serve(self) -> None:
        buf = bytearray()
        while not self.done:
            chunk = os.read(0, READ_SIZE)
            if not chunk:
                return
            buf += chunk
            # one recorded_at per chunk, as a writer stamps once per locked append
            self.stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
            answers: list[bytes] = []
            pos = 0
            while not self.done:
                head_end = buf.find(b"\r\n\r\n", pos)
                if head_end < 0:
                    break
                start = head_end + 4
                end = start + _content_length(bytes(buf[pos:head_end]))
                if len(buf) < end:
                    break
                answer = self.handle(json.loads(buf[start:end]))
                pos = end
                if answer is not None:
                    answers.append(_frame(answer))
            del buf[:pos]
            if answers:
                _write_all(1, b"".join(answers))


def main() -> None:
    home = os.environ.get("DX_TELEMETRY_HOME") or tempfile.mkdtemp(prefix="dx-floor-")
    floor = Floor(home)
    try:
        floor.serve()
    finally:
        for fd in floor.files.values():
            os.close(fd)
    sys.exit(0)


if __name__ == "__main__":
    main()
