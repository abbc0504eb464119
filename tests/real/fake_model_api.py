"""A fake model API on 127.0.0.1 for the real AI tools: Anthropic Messages, OpenAI Responses,
OpenAI Chat Completions and Gemini on one port, each model call answered with known usage
(`known_usage.usage_for`, distinct per call) and logged, so a test knows exactly what the
ledger must hold.

In a test: `with FakeModelApi(log=path) as api: ...; api.calls` (the model calls, in order).
By hand: `python -m tests.real.fake_model_api [--port P] [--log F] [--otlp-port O --otlp-dir D]`
prints the URLs and serves until interrupted (with `--otlp-dir`, an OTLP capture server too).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.real.known_usage import KnownUsage, from_dict, usage_for
from tests.real.loopback import BodyError, LoopbackServer, QuietHandler, read_body
from tests.real.protocols import (
    Call,
    Reply,
    anthropic,
    gemini,
    json_reply,
    openai_chat,
    openai_responses,
)

PROTOCOLS: tuple[ModuleType, ...] = (anthropic, openai_responses, openai_chat, gemini)


@dataclass(frozen=True)
class ModelCall:
    """One model call the fake answered: what it reported, and under which ids."""

    index: int
    protocol: str
    path: str
    model: str
    stream: bool
    usage: KnownUsage
    ids: dict[str, str]

    @staticmethod
    def from_log(entry: dict[str, Any]) -> ModelCall:
        return ModelCall(
            entry["index"],
            entry["protocol"],
            entry["path"],
            entry["model"],
            entry["stream"],
            from_dict(entry["known"]),
            entry["ids"],
        )


class FakeModelApi(LoopbackServer):
    def __init__(self, *, port: int = 0, log: Path | None = None, first_index: int = 0) -> None:
        super().__init__(_Handler, port)
        self.run = uuid.uuid4().hex[:8]
        self.log = log
        self.calls: list[ModelCall] = []
        #: every request, model call or not (`count_tokens`, analytics, unknown paths)
        self.requests: list[dict[str, Any]] = []
        self._next = first_index
        self._lock = threading.Lock()

    def next_usage(self, *, cache_write: bool, reasoning: bool) -> tuple[int, KnownUsage]:
        with self._lock:
            index = self._next
            self._next += 1
        return index, usage_for(index, cache_write=cache_write, reasoning=reasoning)

    def record(self, call: Call, protocol: str | None, reply: Reply) -> None:
        entry: dict[str, Any] = {
            "at": time.time(),
            "method": call.method,
            "path": call.path,
            "protocol": protocol,
            "status": reply.status,
        }
        if reply.usage is not None and reply.index is not None:
            entry.update(
                index=reply.index,
                model=reply.model,
                stream=reply.stream,
                known=reply.usage.as_dict(),
                sent_usage=reply.sent_usage,
                ids=reply.ids,
            )
        with self._lock:
            self.requests.append(entry)
            if reply.usage is not None:
                self.calls.append(ModelCall.from_log(entry))
                self.calls.sort(key=lambda c: c.index)
            if self.log is not None:
                with open(self.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, sort_keys=True) + "\n")


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        api: FakeModelApi = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        try:
            raw = read_body(self) if self.command == "POST" else b""
            body = json.loads(raw) if raw.strip() else None
        except (BodyError, ValueError) as e:
            self.send_bytes(400, json.dumps({"error": str(e)}).encode(), "application/json")
            return
        call = Call(
            self.command,
            parts.path,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            api.run,
        )
        protocol = next((p for p in PROTOCOLS if p.handles(call)), None)
        if protocol is None:
            reply = json_reply({"error": {"message": f"the fake has no {call.path}"}}, 404)
        else:
            reply = protocol.answer(call, api.next_usage)
        api.record(call, protocol.NAME if protocol else None, reply)
        self.send_bytes(reply.status, reply.body, reply.content_type, reply.headers)


def main(argv: list[str] | None = None) -> None:
    from tests.real.otlp_capture import OtlpCapture

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--otlp-port", type=int, default=0)
    parser.add_argument("--otlp-dir", type=Path)
    args = parser.parse_args(argv)
    api = FakeModelApi(port=args.port, log=args.log).start()
    print(f"model API: {api.url}", flush=True)
    capture = None
    if args.otlp_dir:
        capture = OtlpCapture(args.otlp_dir, port=args.otlp_port).start()
        print(f"OTLP capture: {capture.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        if capture:
            capture.stop()


if __name__ == "__main__":
    main()
