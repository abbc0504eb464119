"""Claude Code history: initial ingestion next to ccusage, and the cost of one appended line.

Usage: .venv/bin/python benchmarks/claude_ingest.py [--runs N] [--appends N] [--sizes 50,100,200]
       [--append-sizes 50,200] [--seed S]

Goals (issue 5): ingestion no slower than ccusage, memory flat in the history's size; an appended
line in the ledger within 1 s for under 10 ms of CPU, whatever the history's size. Takes about
3 minutes (plus about 6 s to generate the history, once a day: its last day is yesterday).

1. Initial ingestion of a generated history (~50, ~100 and ~200 MiB: see claude_history.py,
   cached under .cache/bench/): `dx-lsp-telemetry scan --source claude-code --path H --since D`
   on a fresh DX_TELEMETRY_HOME, and ccusage 20.0.24 `claude daily --json -O -z UTC` on the same
   files (CLAUDE_CONFIG_DIR=H, an empty HOME), interleaved, N runs each. Wall time and peak RSS
   of each process (wait4's rusage), their ratio, and whether our per-day totals
   (`report --json`), ccusage's and the generator's agree.
2. One line appended with a real leader sidecar running (over LSP, `sources.claudeCode` on the
   history, pushes off), once its initial scan is done: the time until the event is in the ledger
   (and in a `dxTelemetry/statusChanged`), and the sidecar's CPU time for it, from just before the
   append until the process is idle again (its CPU clock still for 1 s), minus the idle rate.
   The ledger is watched with fstat and pread on a descriptor opened before the append: opening
   a watched file per poll would cost the sidecar inotify events and inflate its CPU time.
   Next to it, ccusage's time for one report on the same history (it re-reads everything).
Each table is printed with the machine's load average before and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claude_history import History, MiB, histories, repair

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
CCUSAGE = Path(
    os.environ.get("CCUSAGE")
    or ROOT / "tests/peers/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage"
)
CCUSAGE_VERSION = "20.0.24"
FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
CC_FIELDS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
IDLE_SECONDS = 1.0
#: CPU below this per IDLE_SECONDS counts as idle (a sleeping event loop is not perfectly still)
IDLE_NOISE_NS = 2_000_000


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Run:
    wall: float
    max_rss_kib: int
    cpu: float
    stdout: bytes


#: GNU time reports its child's own peak RSS: a child forked straight from this (large)
#: process would inherit this process's high-water mark in its ru_maxrss
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def timed(cmd: Sequence[str], env: dict[str, str]) -> Run:
    """Run `cmd`; wall time, its peak RSS (its own, through GNU time when there is one) and CPU."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        wrapped = [GNU_TIME, "-f", "maxrss=%M", *cmd] if GNU_TIME else list(cmd)
        proc = subprocess.Popen(
            wrapped, env=env, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    max_rss = usage.ru_maxrss
    reported = [x for x in stderr.decode(errors="replace").splitlines() if x.startswith("maxrss=")]
    if GNU_TIME and reported:
        max_rss = int(reported[-1].split("=", 1)[1])
    return Run(wall, max_rss, usage.ru_utime + usage.ru_stime, stdout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DX_", "CLAUDE_", "CODEX_", "XDG_")) and k != "HOME"
    }
    env.update(extra)
    return env


# -- 1. initial ingestion ----------------------------------------------------------------------


def ours(history: History, scratch: Path) -> Run:
    home = Path(tempfile.mkdtemp(prefix="dx-home-", dir=scratch))
    env = clean_env(DX_TELEMETRY_HOME=str(home / "dx"), HOME=str(home))
    since = (history.first_day - timedelta(days=1)).isoformat()
    cmd = [sys.executable, "-m", "dx_lsp_telemetry", "scan", "--source", "claude-code"]
    run = timed([*cmd, "--path", str(history.root), "--since", since], env)
    run.stdout = _our_totals(home, env, history)
    shutil.rmtree(home, ignore_errors=True)
    return run


def _our_totals(home: Path, env: dict[str, str], history: History) -> bytes:
    days = (datetime.now(timezone.utc).date() - history.first_day).days + 2
    done = subprocess.run(
        [sys.executable, "-m", "dx_lsp_telemetry", "report", "--json", "--days", str(days)],
        env=env,
        capture_output=True,
        check=True,
    )
    rows = json.loads(done.stdout)["days"]
    totals = {
        r["date"]: [r["totals"][f] for f in FIELDS]
        for r in rows
        if r["tool"] == "claude-code" and r["totals"]["events"]
    }
    return json.dumps(totals, sort_keys=True).encode()


def ccusage(history: History, scratch: Path) -> Run:
    home = Path(tempfile.mkdtemp(prefix="cc-home-", dir=scratch))
    env = clean_env(HOME=str(home), CLAUDE_CONFIG_DIR=str(history.root))
    run = timed([str(CCUSAGE), "claude", "daily", "--json", "-O", "-z", "UTC"], env)
    rows = json.loads(run.stdout)["daily"]
    run.stdout = json.dumps(
        {r["date"]: [r[f] for f in CC_FIELDS] for r in rows}, sort_keys=True
    ).encode()
    shutil.rmtree(home, ignore_errors=True)
    return run


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt(values: list[float], digits: int = 2) -> str:
    med, lo, hi = stats(values)
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def ingestion(hists: dict[int, History], runs: int, scratch: Path) -> dict[int, list[Run]]:
    """Print the ingestion table; return ccusage's runs per size (for the append table)."""
    load_before = load()
    rows = []
    for size, history in hists.items():
        mine: list[Run] = []
        theirs: list[Run] = []
        for i in range(runs):  # interleaved, alternating who goes first: same machine state
            for tool in ("ours", "ccusage") if i % 2 == 0 else ("ccusage", "ours"):
                if tool == "ours":
                    mine.append(ours(history, scratch))
                else:
                    theirs.append(ccusage(history, scratch))
        expected = json.dumps(
            {d: v[:4] for d, v in history.expected.items()}, sort_keys=True
        ).encode()
        agree = all(r.stdout == expected for r in mine + theirs)
        rows.append((size, history, mine, theirs, agree))
    print()
    print(
        f"Initial ingestion of a generated Claude Code history, {runs} runs each, "
        f"median [min-max]; before: {load_before}; after: {load()}"
    )
    print(
        f"  ours: {Path(sys.executable).name} -m dx_lsp_telemetry scan --source claude-code "
        "--path H --since D (fresh home)"
    )
    print(f"  ccusage {CCUSAGE_VERSION}: claude daily --json -O -z UTC (CLAUDE_CONFIG_DIR=H)")
    head = (
        f"{'history':<22} {'ours wall s':>18} {'ccusage wall s':>18} {'ours/cc':>8} "
        f"{'ours peak MiB':>18} {'ccusage peak MiB':>18} {'ours CPU s':>10} {'cc CPU s':>9}"
    )
    print(head)
    print("-" * len(head))
    for _size, h, mine, theirs, _agree in rows:
        ratio = statistics.median(r.wall for r in mine) / statistics.median(r.wall for r in theirs)
        label = f"{h.bytes / MiB:.0f} MiB, {h.files} files"
        print(
            f"{label:<22} {fmt([r.wall for r in mine]):>18} {fmt([r.wall for r in theirs]):>18} "
            f"{ratio:>7.2f}x {fmt([r.max_rss_kib / 1024 for r in mine], 0):>18} "
            f"{fmt([r.max_rss_kib / 1024 for r in theirs], 0):>18} "
            f"{statistics.median(r.cpu for r in mine):>10.2f} "
            f"{statistics.median(r.cpu for r in theirs):>9.2f}"
        )
    for _size, h, _mine, _theirs, agree in rows:
        print(
            f"totals agree ({h.bytes / MiB:.0f} MiB, {len(h.expected)} days, "
            f"ours = ccusage = generator): {'yes' if agree else 'no'}"
        )
    for size, h, mine, theirs, agree in rows:
        if not agree:
            _explain(size, h, mine, theirs)
    return {size: theirs for size, _h, _mine, theirs, _agree in rows}


def _explain(size: int, h: History, mine: list[Run], theirs: list[Run]) -> None:
    a = json.loads(mine[0].stdout)
    b = json.loads(theirs[0].stdout)
    for day in sorted(set(a) | set(b) | set(h.expected)):
        expected = h.expected.get(day, [None] * 5)[:4]
        if not a.get(day) == b.get(day) == expected:
            print(f"  ~{size} MiB {day}: ours {a.get(day)} ccusage {b.get(day)} wanted {expected}")


# -- 2. one appended line, a sidecar running -------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """The process's CPU clock (all its threads, ns): CLOCK_PROCESS_CPUTIME_ID of another pid."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def claude_event_id(message_id: str, request_id: str) -> str:
    key = f"msg:{message_id}:{request_id}"
    return "claude-code:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def assistant_line(rng: random.Random, session: str, now: datetime) -> tuple[str, str]:
    alnum = string.ascii_letters + string.digits
    message_id = "msg_01" + "".join(rng.choices(alnum, k=22))
    request_id = "req_011C" + "".join(rng.choices(alnum, k=20))
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/work/bench",
        "sessionId": session,
        "version": "2.0.14",
        "gitBranch": "main",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "appended " * 200}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 7,
                "cache_creation_input_tokens": 120,
                "cache_read_input_tokens": 20_000,
                "output_tokens": 321,
                "service_tier": "standard",
            },
        },
        "requestId": request_id,
        "type": "assistant",
        "uuid": str(rng.getrandbits(64)),
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
    }
    return json.dumps(line, separators=(",", ":")) + "\n", claude_event_id(message_id, request_id)


@dataclass
class Append:
    to_ledger: float
    to_status: float | None
    cpu_ms: float
    busy: float  # seconds from the append until the last CPU use


@dataclass
class AppendResult:
    history: History
    initial_scan: float
    rss_after_scan_mib: float
    hwm_mib: float
    idle_ms_per_s: float
    appends: list[Append] = field(default_factory=list)
    discarded: int = 0


async def _until(
    predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.002
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


async def _wait_idle(pid: int, timeout: float = 120.0) -> tuple[int, float]:
    """Until the CPU clock has not moved (beyond noise) for IDLE_SECONDS; (ns, moment) of the
    last move."""
    deadline = time.monotonic() + timeout
    last_ns, last_t = cpu_ns(pid), time.perf_counter()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        now_ns, now_t = cpu_ns(pid), time.perf_counter()
        if now_ns - last_ns > IDLE_NOISE_NS * (now_t - last_t) / IDLE_SECONDS + 200_000:
            last_ns, last_t = now_ns, now_t
        elif now_t - last_t >= IDLE_SECONDS:
            return last_ns, last_t
    raise TimeoutError("the sidecar never went idle")


class _LedgerWatch:
    """Looks for a line appended to one ledger file without opening it again and again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.offset = 0
        self._open()

    def _open(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
            self.offset = os.fstat(self.fd).st_size
        except FileNotFoundError:
            self.fd = None

    def holds(self, needle: bytes) -> bool:
        if self.fd is None:
            self._open()  # created by this append: read from 0
            self.offset = 0
            if self.fd is None:
                return False
        size = os.fstat(self.fd).st_size
        return size > self.offset and needle in os.pread(self.fd, size - self.offset, self.offset)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def append_run(history: History, appends: int, scratch: Path, seed: int) -> AppendResult:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    from dx_lsp_telemetry.lsp.server import raw_json_converter

    home = Path(tempfile.mkdtemp(prefix="dx-sidecar-", dir=scratch))
    env = clean_env(DX_TELEMETRY_HOME=str(home / "dx"), HOME=str(home), PYTHONUNBUFFERED="1")
    statuses: list[tuple[float, int]] = []

    def on_status(ls: Any, params: Any) -> None:  # pygls passes `ls` by this name
        today = params["today"]["tools"].get("claude-code", {})
        statuses.append((time.perf_counter(), int(today.get("events", 0))))

    client = LanguageClient("bench", "1", converter_factory=raw_json_converter)
    client.feature("dxTelemetry/statusChanged")(on_status)
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda ls, p: None)
    settings = {
        "email": "bench@example.com",
        "tool": "bench",
        "flush": {"enabled": False},
        "sources": {"claudeCode": {"enabled": True, "path": str(history.root)}},
    }
    checkpoint = home / "dx" / "sources" / "claude-code.json"

    def last_scan() -> str | None:
        try:
            return json.loads(checkpoint.read_text())["summary"].get("lastScan")  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError):
            return None

    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "dx_lsp_telemetry", env=env)
    assert client._server is not None
    pid = client._server.pid
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                process_id=os.getpid(),
                initialization_options=settings,
            )
        )
        client.initialized(types.InitializedParams())
        await _until(last_scan, 600, "the initial scan", step=0.05)
        initial = time.perf_counter() - started
        await _wait_idle(pid)
        result = AppendResult(
            history,
            initial,
            proc_status(pid, "VmRSS") / 1024,
            proc_status(pid, "VmHWM") / 1024,
            0.0,
        )
        a, t0 = cpu_ns(pid), time.perf_counter()
        await asyncio.sleep(3)
        result.idle_ms_per_s = (cpu_ns(pid) - a) / 1e6 / (time.perf_counter() - t0)

        rng = random.Random(f"append:{seed}")
        transcripts = [
            p for p in history.transcripts() if "subagents" not in p.parts and p.stat().st_size
        ]
        ledger_dir = home / "dx" / "ledger"
        tries = 0
        while len(result.appends) < appends and tries < appends * 3:
            tries += 1
            target = rng.choice(transcripts)
            now = datetime.now(timezone.utc)
            line, event_id = assistant_line(rng, target.stem, now)
            ledger = ledger_dir / f"{now.date().isoformat()}.jsonl"
            needle = event_id.encode()
            # watched by the sidecar: poll with fstat and pread on a descriptor opened before the
            # append (an open or close per poll would cost the sidecar inotify events, not ours)
            watch = _LedgerWatch(ledger)
            seen_today = statuses[-1][1] if statuses else 0
            scan_before = last_scan()
            cpu_before = cpu_ns(pid)
            t_append = time.perf_counter()
            with open(target, "a", encoding="utf-8") as f:
                f.write(line)

            def landed(watch: _LedgerWatch = watch, needle: bytes = needle) -> bool:
                return watch.holds(needle)

            await _until(landed, 30, "the appended line in the ledger", step=0.001)
            t_ledger = time.perf_counter()
            watch.close()
            cpu_idle, t_idle = await _wait_idle(pid)
            in_status = next((t for t, n in statuses if t >= t_append and n > seen_today), None)
            if last_scan() != scan_before:
                result.discarded += 1  # the 60 s periodic scan ran meanwhile: not this line's cost
                continue
            idle_cost = result.idle_ms_per_s * (t_idle - t_append)
            result.appends.append(
                Append(
                    to_ledger=t_ledger - t_append,
                    to_status=None if in_status is None else in_status - t_append,
                    cpu_ms=max(0.0, (cpu_idle - cpu_before) / 1e6 - idle_cost),
                    busy=t_idle - t_append,
                )
            )
        return result
    finally:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        except Exception:
            client._server.kill()
        await client.stop()  # type: ignore[no-untyped-call]
        shutil.rmtree(home, ignore_errors=True)
        repair(history.root.parent)  # the appended lines out of the cached history again


def print_appends(
    results: dict[int, AppendResult], appends: int, peer: dict[int, list[Run]], load_before: str
) -> None:
    print()
    print(
        f"One assistant line appended to an existing transcript, a leader sidecar running "
        f"({appends} appends each, median / max); before: {load_before}; after: {load()}"
    )
    print(
        "  initial scan: spawn to the checkpoint's lastScan; RSS/peak: the sidecar after it; "
        "-> ledger/status: from the append; CPU: the sidecar's, append to idle"
    )
    print(
        "  ccusage re-reads the whole history for every report: its wall and CPU time per "
        "report, median of the ingestion runs"
    )
    head = (
        f"{'history':<22} {'initial scan s':>14} {'RSS MiB':>8} {'peak MiB':>9} "
        f"{'-> ledger ms':>14} {'-> status ms':>14} {'CPU ms':>13} {'idle CPU ms/s':>13} "
        f"{'ccusage ms':>10} {'cc CPU ms':>9}"
    )
    print(head)
    print("-" * len(head))
    for size, r in results.items():
        cc = peer[size]
        led = [a.to_ledger * 1000 for a in r.appends]
        st = [a.to_status * 1000 for a in r.appends if a.to_status is not None]
        cpu = [a.cpu_ms for a in r.appends]
        label = f"{r.history.bytes / MiB:.0f} MiB, {r.history.files} files"
        print(
            f"{label:<22} {r.initial_scan:>14.1f} {r.rss_after_scan_mib:>8.0f} {r.hwm_mib:>9.0f} "
            f"{statistics.median(led):>6.0f} / {max(led):>5.0f} "
            + (f"{statistics.median(st):>6.0f} / {max(st):>5.0f} " if st else f"{'-':>14} ")
            + f"{statistics.median(cpu):>5.1f} / {max(cpu):>5.1f} {r.idle_ms_per_s:>13.2f} "
            + f"{statistics.median(x.wall for x in cc) * 1000:>10.0f} "
            + f"{statistics.median(x.cpu for x in cc) * 1000:>9.0f}"
            + (f"  ({r.discarded} discarded: periodic scan)" if r.discarded else "")
        )


def ccusage_version() -> str:
    if not CCUSAGE.exists():
        sys.exit(f"ccusage not found at {CCUSAGE}: run `make peers`")
    done = subprocess.run([str(CCUSAGE), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip().removeprefix("ccusage").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="ingestion runs per tool and size")
    parser.add_argument("--appends", type=int, default=10, help="appended lines per history")
    parser.add_argument("--sizes", default="50,100,200", help="history sizes (MiB) to ingest")
    parser.add_argument("--append-sizes", default="50,200", help="history sizes for appends")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    append_sizes = [int(s) for s in args.append_sizes.split(",") if s]
    version = ccusage_version()
    if version != CCUSAGE_VERSION:
        print(f"warning: ccusage {version}, not {CCUSAGE_VERSION}", file=sys.stderr)
    hists = histories(CACHE, sorted(set(sizes) | set(append_sizes)), seed=args.seed)
    for h in hists.values():
        print(
            f"history ~{h.bytes / MiB:.0f} MiB: {h.projects} projects, {h.files} files, "
            f"{h.lines} lines, {sum(v[4] for v in h.expected.values())} distinct responses, "
            f"{len(h.expected)} days {h.first_day}..{h.end}"
        )
    print(f"Python {sys.version.split()[0]}, ccusage {version}")
    with tempfile.TemporaryDirectory(prefix="dx-bench-") as tmp:
        scratch = Path(tmp)
        peer: dict[int, list[Run]] = {}
        if sizes and args.runs:
            peer = ingestion({s: hists[s] for s in sizes}, args.runs, scratch)
        if append_sizes and args.appends:
            for s in append_sizes:
                if s not in peer:
                    peer[s] = [ccusage(hists[s], scratch) for _ in range(3)]
            load_before = load()
            results = {
                s: asyncio.run(append_run(hists[s], args.appends, scratch, args.seed))
                for s in append_sizes
            }
            print_appends(results, args.appends, peer, load_before)


if __name__ == "__main__":
    main()
