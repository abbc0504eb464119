"""The OTLP receiver's cost: the sidecar's CPU per OTLP/JSON batch of 100 Claude Code
`claude_code.api_request` events, next to a floor, and the sidecar's memory with the receiver on
and off.

Usage: .venv/bin/python benchmarks/otlp_batch.py [--batches N]

A real sidecar over stdio (`lsp_wire`), real HTTP on 127.0.0.1 (httpx, one kept-alive
connection, as an exporter holds one). Each batch holds 100 new requests (new request ids,
attributes as Claude Code 2.1.x sends them, a prompt event beside them). Per batch:
- "to the answer": the sidecar's CPU (all its threads, CPUCLOCK_SCHED) from the POST to its
  200, which comes once the events are in the ledger;
- "with what follows": the same plus the next 300 ms, where the events are indexed and the
  editor is sent the new status, minus what the idle sidecar spends in 300 ms;
- the floor: `json.loads` of the same body in this process, in the same run: the least any
  Python receiver must spend on it.
Medians over the batches after 3 warm-up ones, [min-max].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsp_wire import SIDECAR, Connection, clean_env, cpu_ns, initialize_params, load

EVENTS = 100
WARMUP = 3
SETTLE = 0.3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def batch(n: int, when: datetime) -> bytes:
    """100 `api_request` events of batch `n` (and one prompt event), as Claude Code sends."""
    records = []
    for i in range(EVENTS):
        ts = when + timedelta(milliseconds=i)
        nanos = str(int(ts.timestamp() * 1e6) * 1000)
        attrs = [
            attr("session.id", "5b0f8c1e-7a3d-4c2b-9e8f-1d2c3b4a5f60"),
            attr("user.id", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            attr("user.account_uuid", "0a1b2c3d-0000-4000-8000-00000000a11c"),
            attr("organization.id", "0a1b2c3d-0000-4000-8000-0000000000o1"),
            attr("user.email", "dev@example.com"),
            attr("terminal.type", "vscode"),
            attr("app.version", "2.1.240"),
            attr("event.name", "api_request"),
            attr("event.timestamp", ts.isoformat(timespec="milliseconds")),
            attr("event.sequence", i),
            attr("prompt.id", f"prompt-{n}"),
            attr("model", "claude-sonnet-4-5-20250929"),
            attr("input_tokens", 1000 + i),
            attr("output_tokens", 50 + i),
            attr("cache_read_tokens", 20_000 + i),
            attr("cache_creation_tokens", 700 + i),
            attr("cost_usd", 0.0123),
            attr("duration_ms", 2314),
            attr("speed", "normal"),
            attr("query_source", "repl_main_thread"),
            attr("request_id", f"req_bench_{n:05d}_{i:03d}"),
        ]
        records.append(
            {
                "timeUnixNano": nanos,
                "observedTimeUnixNano": nanos,
                "severityNumber": 9,
                "body": {"stringValue": "claude_code.api_request"},
                "attributes": attrs,
            }
        )
    records.append(
        {
            "timeUnixNano": str(int(when.timestamp() * 1e9)),
            "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": [attr("event.name", "user_prompt"), attr("prompt", "x" * 2000)],
        }
    )
    request = {
        "resourceLogs": [
            {
                "resource": {"attributes": [attr("service.name", "claude-code")]},
                "scopeLogs": [
                    {"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}
                ],
            }
        ]
    }
    return json.dumps(request).encode()


async def start(home: Path, port: int | None) -> Connection:
    settings: dict[str, Any] = {
        "email": "bench@example.com",
        "tool": "bench",
        "flush": {"enabled": False},
    }
    if port is not None:
        settings["otlp"] = {"enabled": True, "port": port}
    conn = await Connection.spawn(SIDECAR, clean_env(DX_TELEMETRY_HOME=str(home), HOME=str(home)))
    await conn.call("initialize", initialize_params(settings))
    conn.notify("initialized", {})
    deadline = time.monotonic() + 20
    while True:
        status = await conn.call("dxTelemetry/status", {})
        state = status.get("otlp", {}).get("state")
        if port is None or state == "listening":
            return conn
        if time.monotonic() > deadline:
            raise RuntimeError(f"the receiver did not start: {status.get('otlp')}")
        await asyncio.sleep(0.1)


async def idle_cpu(conn: Connection, seconds: float, times: int = 5) -> float:
    spent = []
    for _ in range(times):
        before = cpu_ns(conn.pid)
        await asyncio.sleep(seconds)
        spent.append(cpu_ns(conn.pid) - before)
    return statistics.median(spent)


async def measure(batches: int) -> dict[str, Any]:
    when = datetime.now(timezone.utc) - timedelta(minutes=5)
    with tempfile.TemporaryDirectory() as tmp:
        off = await start(Path(tmp) / "off", None)
        await asyncio.sleep(1.0)
        rss_off = off.rss_mib()
        await off.close()

        port = free_port()
        conn = await start(Path(tmp) / "on", port)
        await asyncio.sleep(1.0)
        rss_on = conn.rss_mib()
        idle = await idle_cpu(conn, SETTLE)
        answer_ms, settled_ms, floor_ms, sizes = [], [], [], []
        url = f"http://127.0.0.1:{port}/v1/logs"
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(batches + WARMUP):
                body = batch(n, when)
                t0 = time.process_time_ns()
                json.loads(body)
                floor = time.process_time_ns() - t0
                before = cpu_ns(conn.pid)
                response = await http.post(url, content=body, headers=headers)
                answered = cpu_ns(conn.pid)
                if response.status_code != 200 or response.json() != {}:
                    raise RuntimeError(f"batch {n}: {response.status_code} {response.text}")
                await asyncio.sleep(SETTLE)
                settled = cpu_ns(conn.pid)
                if n >= WARMUP:
                    answer_ms.append((answered - before) / 1e6)
                    settled_ms.append((settled - before - idle) / 1e6)
                    floor_ms.append(floor / 1e6)
                    sizes.append(len(body))
            again = []
            for n in range(WARMUP, WARMUP + min(batches, 10)):  # re-sent: all duplicates
                body = batch(n, when)
                before = cpu_ns(conn.pid)
                response = await http.post(url, content=body, headers=headers)
                again.append((cpu_ns(conn.pid) - before) / 1e6)
        status = await conn.call("dxTelemetry/status", {})
        events = status["today"]["tools"].get("claude-code", {}).get("events", 0)
        if events != batches * EVENTS + WARMUP * EVENTS:
            raise RuntimeError(f"expected {(batches + WARMUP) * EVENTS} events, got {events}")
        rss_after = conn.rss_mib()
        await conn.close()
    return {
        "answer": answer_ms,
        "settled": settled_ms,
        "floor": floor_ms,
        "again": again,
        "bytes": statistics.median(sizes),
        "rss_off": rss_off,
        "rss_on": rss_on,
        "rss_after": rss_after,
        "events": events,
    }


def row(name: str, values: list[float], unit: str = "ms") -> str:
    med = statistics.median(values)
    return f"| {name} | {med:.2f} {unit} [{min(values):.2f}-{max(values):.2f}] |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    result = asyncio.run(measure(args.batches))
    floor = statistics.median(result["floor"])
    print(
        f"OTLP receiver: {args.batches} batches of {EVENTS} Claude Code events "
        f"({result['bytes'] / 1024:.0f} KiB of JSON each), Python {sys.version.split()[0]}, "
        f"{load()}"
    )
    print("| measure | median [min-max] |")
    print("|---|---|")
    print(row("floor: json.loads of the body, this process", result["floor"]))
    print(row("sidecar CPU, POST to its 200 (events in the ledger)", result["answer"]))
    print(row("sidecar CPU, with the indexing and status that follow", result["settled"]))
    print(row("sidecar CPU, the same batch again (all duplicates)", result["again"]))
    per_event = statistics.median(result["settled"]) * 1000 / EVENTS
    ratio = statistics.median(result["answer"]) / floor
    print(f"| sidecar CPU per event, all included | {per_event:.0f} us |")
    print(f"| to the answer / floor | {ratio:.1f}x |")
    print(f"| sidecar RSS, receiver off | {result['rss_off']:.1f} MiB |")
    print(f"| sidecar RSS, receiver on (listening) | {result['rss_on']:.1f} MiB |")
    print(
        f"| sidecar RSS, receiver on, after {result['events']:,} events "
        f"| {result['rss_after']:.1f} MiB |"
    )


if __name__ == "__main__":
    main()
