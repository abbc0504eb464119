"""What waiting for AI tools' folders costs: the sidecar's CPU during bursts of unrelated
changes in the home folder, where it watches the home (without subfolders) for the folders of
enabled sources that are not there yet, next to a sidecar whose sources' folders all exist.

Usage: .venv/bin/python benchmarks/awaited_folders.py [--ops N] [--runs R]

A real sidecar over stdio (`lsp_wire`), HOME a fresh folder, the log sources of tools that live
in the home enabled (Claude Code, Codex, Gemini CLI, Qwen Code, Copilot CLI, Continue, Droid,
Junie, Aider, Cline 4): "awaiting", none of their folders exists, so `~` (and `~/.config`) are
watched for them; "present", each exists (empty), so nothing watches the home itself. Each
burst does N operations in the home, as shells, editors and tools do there:
- append: a line appended to an existing file (a shell history): no event reaches us at all
  (the watch asks the kernel for creations and moves only);
- create+delete: a new file written, closed and removed (a lock file);
- save by rename: a temporary file written and renamed over an existing one (an editor);
- mkdir+rmdir: a folder made and removed.
The CPU is the sidecar's (all threads, CPUCLOCK_SCHED) from just before the burst until it has
been still for 0.5 s, minus its idle rate over that time; medians over R runs, per operation in
microseconds. Linux (inotify) only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsp_wire import SIDECAR, Connection, clean_env, cpu_ns, initialize_params, load

SOURCES = (
    "claudeCode",
    "codex",
    "geminiCli",
    "qwenCode",
    "copilotCli",
    "continue",
    "droid",
    "junie",
    "aider",
    "cline",
)
#: each source's folder in the home (as its defaults name them), made for "present"
FOLDERS = (
    ".claude/projects",
    ".config/claude/projects",
    ".codex/sessions",
    ".codex/archived_sessions",
    ".gemini/tmp",
    ".qwen/projects",
    ".copilot/session-state",
    ".copilot/history-session-state",
    ".continue/dev_data",
    ".factory/sessions",
    ".junie/sessions",
    ".aider",
    ".cline/data/sessions",
    ".config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks",
)
STILL = 0.5  # seconds of no CPU that count as idle again


async def start(home: Path, data: Path) -> Connection:
    settings: dict[str, Any] = {
        "email": "bench@example.com",
        "tool": "bench",
        "flush": {"enabled": False},
        "sources": {name: {"enabled": True} for name in SOURCES},
    }
    env = clean_env(DX_TELEMETRY_HOME=str(data), HOME=str(home))
    conn = await Connection.spawn(SIDECAR, env)
    await conn.call("initialize", initialize_params(settings))
    conn.notify("initialized", {})
    deadline = time.monotonic() + 60
    while not all((data / "sources" / f"{label}.json").exists() for label in ("gemini-cli",)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no first scan: {conn.stderr_tail()}")
        await asyncio.sleep(0.1)
    await still(conn)
    return conn


async def still(conn: Connection, timeout: float = 60.0) -> float:
    """Until the sidecar's CPU clock has not moved for `STILL` seconds; when that began."""
    deadline = time.monotonic() + timeout
    last, since = cpu_ns(conn.pid), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = cpu_ns(conn.pid)
        if now - last > 100_000:  # 0.1 ms: the clock's own noise is far below
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= STILL:
            return since
    raise RuntimeError("the sidecar did not go idle")


async def idle_rate(conn: Connection, seconds: float = 2.0) -> float:
    """ns of CPU per second while nothing happens."""
    before, t0 = cpu_ns(conn.pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_ns(conn.pid) - before) / (time.monotonic() - t0)


def appends(home: Path, n: int) -> None:
    with open(home / ".bash_history", "a") as f:
        for i in range(n):
            f.write(f"echo {i}\n")
            f.flush()


def creates(home: Path, n: int) -> None:
    for i in range(n):
        path = home / f".lock-{i}"
        path.write_text("1")
        path.unlink()


def renames(home: Path, n: int) -> None:
    target = home / ".viminfo"
    for i in range(n):
        tmp = home / f".viminfo.tmp{i}"
        tmp.write_text(f"state {i}\n")
        os.replace(tmp, target)


def folders(home: Path, n: int) -> None:
    for i in range(n):
        path = home / f".cache-{i}"
        path.mkdir()
        path.rmdir()


BURSTS: dict[str, Callable[[Path, int], None]] = {
    "append": appends,
    "create+delete": creates,
    "save by rename": renames,
    "mkdir+rmdir": folders,
}


async def burst_cost(
    conn: Connection, home: Path, burst: Callable[[Path, int], None], n: int
) -> float:
    """µs of the sidecar's CPU per operation of the burst, its idle rate taken out."""
    idle = await idle_rate(conn, 1.0)
    before, t0 = cpu_ns(conn.pid), time.monotonic()
    await asyncio.to_thread(burst, home, n)
    quiet_from = await still(conn)
    spent = cpu_ns(conn.pid) - before - idle * max(0.0, quiet_from - t0)
    return max(0.0, spent) / 1e3 / n


async def scenario(name: str, ops: int, runs: int, scratch: Path) -> dict[str, list[float]]:
    home, data = scratch / name / "home", scratch / name / "data"
    home.mkdir(parents=True)
    (home / ".bash_history").write_text("")
    (home / ".viminfo").write_text("")
    if name == "present":
        for folder in FOLDERS:
            (home / folder).mkdir(parents=True, exist_ok=True)
    conn = await start(home, data)
    try:
        if name == "awaiting":
            waiting = conn.stderr_tail(20000)
            if f"(watching {home})" not in waiting:
                raise RuntimeError(f"the home is not watched: {waiting}")
        results: dict[str, list[float]] = {b: [] for b in BURSTS}
        for _ in range(runs):
            for label, burst in BURSTS.items():
                results[label].append(await burst_cost(conn, home, burst, ops))
        results["idle (µs/s)"] = [await idle_rate(conn, 3.0) / 1e3]
    finally:
        await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per burst")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("Linux only (inotify; elsewhere missing folders are looked for every 5 s)")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        found = {
            name: asyncio.run(scenario(name, args.ops, args.runs, Path(tmp)))
            for name in ("present", "awaiting")
        }
    print(f"after: {load()}\n")
    print(f"sidecar CPU per operation in the home, µs (median of {args.runs} bursts of {args.ops})")
    print("| burst | folders present | folders awaited (~ watched) |")
    print("|---|---|---|")
    for label in (*BURSTS, "idle (µs/s)"):
        cells = [f"{statistics.median(found[s][label]):.1f}" for s in ("present", "awaiting")]
        print(f"| {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
