"""Spawn-to-`initialize` time and resident memory of the sidecar, over real stdio.

Usage: .venv/bin/python benchmarks/sidecar_startup.py [RUNS]
Prints a table of medians (and min/max) over RUNS fresh sidecars on fresh homes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from dx_lsp_telemetry.lsp.server import raw_json_converter


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one_run(home: Path) -> tuple[float, float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DX_")}
    env["DX_TELEMETRY_HOME"] = str(home)
    client = LanguageClient("bench", "1", converter_factory=raw_json_converter)
    client.feature("dxTelemetry/statusChanged")(lambda ls, p: None)
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda ls, p: None)
    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "dx_lsp_telemetry", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            process_id=os.getpid(),
            initialization_options={"email": "b@example.com", "tool": "bench"},
        )
    )
    initialized = time.perf_counter() - started
    client.initialized(types.InitializedParams())
    await client.protocol.send_request_async("dxTelemetry/status", {})
    ready = time.perf_counter() - started
    assert client._server is not None
    rss = rss_kib(client._server.pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return initialized, ready, rss


async def main(runs: int) -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            results.append(await one_run(Path(tmp) / f"home{i}"))
    init = [r[0] * 1000 for r in results]
    ready = [r[1] * 1000 for r in results]
    rss = [r[2] / 1024 for r in results]
    print(f"sidecar start-up, {runs} runs, Python {sys.version.split()[0]}")
    print(f"{'measure':<44} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in (
        ("spawn -> initialize answered (ms)", init),
        ("spawn -> first dxTelemetry/status (ms)", ready),
        ("resident memory after start (MiB)", rss),
    ):
        median = statistics.median(values)
        print(f"{name:<44} {median:>9.1f} {min(values):>9.1f} {max(values):>9.1f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
