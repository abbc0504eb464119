"""The CLI's `scan` shares a long read among processes (`sources/parallel.py`): it must write
what one process writes (the same events, the same checkpoint, the same counts and problems),
and stay exact when it is killed half-way: nothing checkpointed, and the next scan counts every
token once. The sidecar never shares (it has threads; its scans are short).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.ledger import LedgerError, LedgerWriter
from dx_lsp_telemetry.sources import parallel
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.ingest import ScanStats
from tests.harness import sidecar_env
from tests.source_logs import (
    claude_assistant,
    claude_usage,
    compact,
    day_start,
    ingestor,
    ledger_days,
)

TOOL = "claude-code"
RECORDED_AT = re.compile(rb',"recorded_at":"[^"]*"')


def write_history(
    logs: Path, sessions: int, responses: int, *, pad: int = 0, first: int = 0
) -> int:
    """Claude Code transcripts with the usual traps: streamed snapshots, a resumed session's
    copies of its predecessor's responses, subagents replaying their session's responses and
    streaming their own answers, an unreadable line; `pad` characters of text per line. Their
    size in bytes."""
    text = "lorem ipsum " * (pad // 12)
    size = 0
    previous: list[dict[str, Any]] = []
    for s in range(first, first + sessions):
        session = f"5e551011-0000-4000-8000-{s:012d}"
        start = day_start(1 + s % 20) + timedelta(hours=9)
        project = f"-home-dev-p{s % 4}"
        lines = [{**line, "sessionId": session} for line in previous[-3:]]  # resumed copies
        own = []
        for r in range(responses):
            ts = start + timedelta(seconds=30 * r)
            ids = (f"msg_{s}_{r}", f"req_{s}_{r}")
            for out in (1, 10 + r):  # a snapshot, then the final line
                usage = claude_usage(3 + r % 5, out, (r % 3) * 100, 1000 + 10 * r)
                own.append(claude_assistant(ts, session, *ids, usage, text=text))
        lines += own
        previous = own
        body = "".join(compact(line) + "\n" for line in lines)
        if s % 7 == 3:
            body += '{"message":{"usage":{"input_tokens":-1}}}\n'  # unreadable
        path = logs / "projects" / project / f"{session}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        size += len(body)
        if s % 5 == 0:  # a side question: replays of the session's responses, its own answer
            request = f"req_side_{s}"  # the side question's request: its id is its own
            replays = [{**line, "isSidechain": True, "requestId": request} for line in own[1:4]]
            answer = claude_assistant(
                start, session, f"msg_side_{s}", request, claude_usage(5, 77), sidechain=True
            )
            sub = path.parent / session / "subagents" / f"agent-{s}.jsonl"
            sub.parent.mkdir(parents=True)
            sub.write_text("".join(compact(x) + "\n" for x in [*replays, answer]))
    return size


def ledger_lines(data: Path) -> list[bytes]:
    """Every ledger line (file name first), `recorded_at` left out, sorted."""
    return sorted(
        path.name.encode() + b" " + RECORDED_AT.sub(b"", line)
        for path in (data / "ledger").glob("*.jsonl")
        for line in path.read_bytes().splitlines()
    )


def checkpoint(data: Path) -> dict[str, Any]:
    saved = json.loads((data / "sources" / f"{TOOL}.json").read_text())
    for key in ("lastRead", "lastScan", "lastErrorAt"):
        saved["summary"].pop(key, None)
    return saved  # type: ignore[no-any-return]


def stats_of(stats: ScanStats) -> dict[str, Any]:
    return {**asdict(stats), "retry": [str(p) for p in stats.retry]}


@pytest.fixture(params=["fork", "spawn"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    method: str = request.param
    monkeypatch.setattr(parallel, "_context", lambda: multiprocessing.get_context(method))
    return method


@pytest.mark.parametrize("since_days", [None, 8])
def test_a_shared_scan_writes_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_method: str, since_days: int | None
) -> None:
    logs = tmp_path / "claude"
    write_history(logs, sessions=23, responses=6)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)  # share even this small history
    monkeypatch.setattr(parallel, "MIN_SHARE_BYTES", 1)
    since = None if since_days is None else day_start(since_days).date()
    shared_data, alone_data = tmp_path / "shared", tmp_path / "alone"
    shared = ingestor(shared_data, ClaudeCode(), logs, since=since).scan(workers=2)
    alone = ingestor(alone_data, ClaudeCode(), logs, since=since).scan()
    assert shared.files == 23 + 5 and shared.records > 0 and shared.problems
    assert stats_of(shared) == stats_of(alone)
    assert ledger_lines(shared_data) == ledger_lines(alone_data)
    assert checkpoint(shared_data) == checkpoint(alone_data)
    assert ledger_days(shared_data, TOOL) == ledger_days(alone_data, TOOL)
    # and both read nothing more the next time (the shared one in one process: little to read)
    again = ingestor(shared_data, ClaudeCode(), logs, since=since).scan(workers=2)
    assert again.records == 0 or since is not None


def test_a_small_scan_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "claude"
    write_history(logs, sessions=5, responses=3)

    def no_processes() -> Any:
        raise AssertionError("a worker process for a few kilobytes")

    monkeypatch.setattr(parallel, "_context", no_processes)
    stats = ingestor(tmp_path / "data", ClaudeCode(), logs).scan(workers=2)
    assert stats.records > 0


def test_a_worker_that_fails_fails_the_scan_and_checkpoints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_history(logs, sessions=8, responses=3)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "MIN_SHARE_BYTES", 1)
    monkeypatch.setattr(parallel, "_context", lambda: multiprocessing.get_context("fork"))

    def broken(self: LedgerWriter, lines: Any) -> None:
        if os.getpid() != parent:  # the worker always starts with files of its own
            raise LedgerError("cannot write the ledger: No space left on device")
        real(self, lines)

    parent, real = os.getpid(), LedgerWriter.append_encoded
    monkeypatch.setattr(LedgerWriter, "append_encoded", broken)
    with pytest.raises(LedgerError, match="No space left"):
        ingestor(data, ClaudeCode(), logs).scan(workers=2)
    assert not (data / "sources" / f"{TOOL}.json").exists()
    monkeypatch.setattr(LedgerWriter, "append_encoded", real)
    ingestor(data, ClaudeCode(), logs).scan(workers=2)
    assert ledger_days(data, TOOL) == ledger_days(reference(tmp_path, logs), TOOL)


def reference(tmp_path: Path, logs: Path) -> Path:
    """The same logs read once, in one process, into a fresh data home."""
    data = tmp_path / "reference"
    if not data.exists():
        ingestor(data, ClaudeCode(), logs).scan()
    return data


# -- killed half-way -------------------------------------------------------------------------------


def start_scan(data: Path, logs: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dx_lsp_telemetry", "scan", "--source", TOOL, "--path", str(logs)],
        env=sidecar_env(data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def ledger_size(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "ledger").glob("*.jsonl"))


def wait_quiet(data: Path, quiet: float = 0.5, timeout: float = 30) -> None:
    """Until the ledger has not grown for `quiet` seconds (a worker whose scan was killed
    stops after the file it is reading)."""
    deadline = time.monotonic() + timeout
    size, since = ledger_size(data), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = ledger_size(data)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise TimeoutError("the ledger kept growing")


def wait_gone(group: int, timeout: float = 10) -> None:
    """Until no process of the scan's process group is left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "a scan worker outlived its scan"
        time.sleep(0.02)


def run_scan(data: Path, logs: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dx_lsp_telemetry", "scan", "--source", TOOL, "--path", str(logs)],
        env=sidecar_env(data),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("how", "before"),
    [
        ("kill -9 the scan", "first scan"),
        ("kill -9 all its processes", "after an earlier scan"),
        ("Ctrl-C", "first scan"),
    ],
)
def test_a_scan_killed_half_way_then_run_again_counts_every_token_once(
    tmp_path: Path, how: str, before: str
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    checkpoint_file = data / "sources" / f"{TOOL}.json"
    write_history(logs, sessions=6, responses=20, pad=1500)
    if before == "after an earlier scan":
        run_scan(data, logs)
    saved = checkpoint_file.read_bytes() if checkpoint_file.exists() else None
    # enough to be shared by two processes (and to take a while)
    size = write_history(logs, sessions=60, responses=150, pad=1500, first=6)
    assert size > max(parallel.MIN_BYTES, 2 * parallel.MIN_SHARE_BYTES) + (4 << 20)
    before_size = ledger_size(data) if (data / "ledger").exists() else 0
    scan = start_scan(data, logs)
    deadline = time.monotonic() + 60
    while not ((data / "ledger").exists() and ledger_size(data) > before_size):
        assert scan.poll() is None, "the scan ended before it wrote anything"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    if how == "kill -9 the scan":
        os.kill(scan.pid, signal.SIGKILL)
    elif how == "kill -9 all its processes":
        os.killpg(scan.pid, signal.SIGKILL)
    else:
        os.killpg(scan.pid, signal.SIGINT)
    assert scan.wait(30) != 0
    wait_gone(scan.pid)  # a worker whose scan is gone stops by itself
    wait_quiet(data)
    # half-way: the checkpoint is as the earlier scan left it (never ahead of the ledger)
    assert (checkpoint_file.read_bytes() if checkpoint_file.exists() else None) == saved
    run_scan(data, logs)
    counted = ledger_days(data, TOOL)
    assert counted == ledger_days(reference(tmp_path, logs), TOOL)
    assert "0 records read" in run_scan(data, logs)
    assert ledger_days(data, TOOL) == counted
