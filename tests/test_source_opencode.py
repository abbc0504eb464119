"""OpenCode source: the step-finish parts of `opencode*.db`, read read-only, counted once.

The databases are made with the tables of OpenCode's first SQLite migration (see
`tests/opencode_logs.py`) and written while being read, as a running OpenCode writes them (WAL).
Each test drives the real `Ingestor` on a temporary data folder and reads the ledger back.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileOpenedEvent,
)

from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.sources import opencode_db
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from dx_lsp_telemetry.sources.opencode import OpenCode
from dx_lsp_telemetry.sources.registry import by_label
from dx_lsp_telemetry.sources.watcher import SCAN_INTERVAL_SECONDS, is_change
from tests.harness import (
    BASE_SETTINGS,
    all_files_text,
    cli_json,
    date_ago,
    run_cli,
    sidecar,
    sidecar_env,
    until_async,
)
from tests.ledger_oracle import winners
from tests.opencode_logs import SECRET, OpenCodeDb, step_tokens
from tests.source_logs import Tally, ledger_tallies

DAY1, DAY2 = "2026-03-01", "2026-03-02"


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    y, m, d = (int(p) for p in day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=timezone.utc)


class Setup:
    """`~/.local/share/opencode` with a database being written, and our data folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "share" / "opencode"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.writer = OpenCodeDb(self.home / "opencode.db")
        self.ingestor = self.new_ingestor()

    def new_ingestor(self, homes: list[Path] | None = None) -> Ingestor:
        return Ingestor(
            self.data, OpenCode(), homes or [self.home], IngestOptions("opencode", estimate=False)
        )

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / "opencode.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)

    def ledger_lines(self) -> int:
        return sum(len(p.read_text().splitlines()) for p in self.data.ledger_dir.glob("*.jsonl"))


@pytest.fixture
def oc(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_steps_are_summed_not_messages(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.user(sid, at(DAY1))
    # three tool-calling steps: the message keeps only the last step's tokens
    steps = [
        step_tokens(1200, 80, reasoning=40, cr=0, cw=9000),
        step_tokens(300, 120, reasoning=0, cr=9000, cw=500),
        step_tokens(200, 400, reasoning=60, cr=9500, cw=0),
    ]
    w.assistant(sid, at(DAY1), steps, costs=[0.05, 0.01, 0.02])
    w.assistant(sid, at(DAY2), [step_tokens(10, 5)], costs=[0.001], model="gpt-5")
    stats = oc.scan()
    assert stats.records == 4 and stats.problems == []
    assert oc.totals() == {
        (DAY1, "opencode"): (3, 1700, 700, 9500, 18500, 8.0),
        (DAY2, "opencode"): (1, 10, 5, 0, 0, 0.1),
    }
    assert sorted(str(e.model) for e in winners(oc.data.ledger_dir)) == [
        "claude-sonnet-4-20250514"
    ] * 3 + ["gpt-5"]


def test_a_second_scan_and_a_restart_read_nothing_again(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1), step_tokens(20, 2)])
    assert oc.scan().records == 2
    lines = oc.ledger_lines()
    for _ in range(3):
        assert oc.scan().records == 0
        assert oc.new_ingestor().scan().records == 0
    assert oc.ledger_lines() == lines
    # the session goes on: only the new steps are read
    w.assistant(sid, at(DAY1, 11), [step_tokens(5, 5), step_tokens(1, 1)])
    assert oc.scan().records == 2
    assert oc.ledger_lines() == lines + 2
    assert oc.totals()[(DAY1, "opencode")][:3] == (4, 36, 9)


def test_a_database_being_written_is_read_consistently(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    assert oc.scan().records == 1
    size, mtime = os.stat(w.path).st_size, os.stat(w.path).st_mtime_ns
    w.db.execute("BEGIN IMMEDIATE")  # a step being written: not committed yet
    w.assistant(sid, at(DAY1, 11), [step_tokens(7, 7), step_tokens(3, 3)])
    assert oc.scan().records == 0  # readers see the last commit, and are not blocked
    w.db.execute("COMMIT")
    # the commit is in the write-ahead log: the database file itself is unchanged
    assert (os.stat(w.path).st_size, os.stat(w.path).st_mtime_ns) == (size, mtime)
    assert oc.scan().records == 2
    w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # folded into the database
    assert oc.scan().records == 0
    assert oc.totals()[(DAY1, "opencode")][:3] == (3, 20, 11)


def test_rowids_reused_after_a_deleted_session_are_read(oc: Setup) -> None:
    w = oc.writer
    old = w.session(at(DAY1))
    w.assistant(old, at(DAY1), [step_tokens(100, 1)])
    doomed = w.session(at(DAY1, 11))
    w.assistant(doomed, at(DAY1, 11), [step_tokens(200, 2), step_tokens(300, 3)])
    assert oc.scan().records == 3
    w.delete_session(doomed)  # its parts held the largest rowids
    newer = w.session(at(DAY1, 12))
    w.assistant(newer, at(DAY1, 12), [step_tokens(7, 7)])  # given those rowids again
    assert oc.scan().records == 1
    assert oc.scan().records == 0
    # deleted usage stays counted: it was spent
    assert oc.totals() == {(DAY1, "opencode"): (4, 607, 13, 0, 0, 0.5)}
    # every remembered part gone too: read from the start, keys keep the counts
    w.delete_session(old)
    w.delete_session(newer)
    third = w.session(at(DAY2))
    w.assistant(third, at(DAY2), [step_tokens(1, 1)])
    assert oc.scan().records == 1
    assert oc.totals()[(DAY2, "opencode")][:3] == (1, 1, 1)


def test_copies_of_a_database_in_two_folders_count_once(oc: Setup, tmp_path: Path) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1), step_tokens(20, 2)])
    w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "backup" / "opencode"
    copy.mkdir(parents=True)
    shutil.copy(w.path, copy / "opencode.db")
    shutil.copy(w.path, oc.home / "opencode-beta.db")  # another channel's copy
    ingestor = oc.new_ingestor([oc.home, copy])
    stats = ingestor.scan()
    assert stats.files == 3 and stats.records == 6
    assert oc.totals() == {(DAY1, "opencode"): (2, 30, 3, 0, 0, 0.3)}


def test_a_replaced_database_is_read_again_counting_nothing_twice(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    assert oc.scan().records == 1
    w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    w.close()
    replaced = w.path.with_name("restored.db")
    shutil.copy(w.path, replaced)
    os.replace(replaced, w.path)  # a restore from a backup: a new inode
    again = OpenCodeDb(w.path)
    again.assistant(sid, at(DAY1, 11), [step_tokens(5, 5)])
    assert oc.scan().records == 2  # read from the start; the old part's key dedupes
    assert oc.totals() == {(DAY1, "opencode"): (2, 15, 6, 0, 0, 0.2)}


def test_a_crash_between_the_ledger_and_the_checkpoint_counts_nothing_twice(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1), step_tokens(20, 2)])
    assert oc.scan().records == 2
    oc.checkpoint.unlink()
    assert oc.new_ingestor().scan().records == 2
    assert oc.totals() == {(DAY1, "opencode"): (2, 30, 3, 0, 0, 0.3)}


# -- traps ------------------------------------------------------------------------------------


def test_a_corrupt_database_is_named_and_the_others_are_read(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    corrupt = oc.home / "opencode-dev.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    os.utime(corrupt, (1_700_000_000, 1_700_000_000))  # broken long ago
    stats = oc.scan()
    assert stats.records == 1
    assert [p for p in stats.problems if p.startswith("opencode-dev.db: ")], stats.problems
    assert "not a readable SQLite database" in stats.problems[0]
    # named once per change of the file, not at every scan
    assert oc.scan().problems == []


def test_a_database_of_another_schema_is_named(oc: Setup) -> None:
    old = sqlite3.connect(oc.home / "opencode-old.db")
    old.executescript(
        "CREATE TABLE message (id text PRIMARY KEY, session_id text, data text);"
        # before OpenCode's first migration: parts without their times
        "CREATE TABLE part (id text PRIMARY KEY, message_id text, session_id text, data text);"
        "CREATE TABLE migration (id TEXT PRIMARY KEY, time_completed INTEGER NOT NULL);"
        "INSERT INTO migration VALUES ('20251201000000_early_preview', 0);"
    )
    old.close()
    other = sqlite3.connect(oc.home / "opencode-other.db")
    other.execute("CREATE TABLE notes (body text)")
    other.execute("INSERT INTO notes VALUES (?)", (SECRET,))
    other.commit()
    other.close()
    stats = oc.scan()
    problems = sorted(stats.problems)
    assert len(problems) == 2, problems
    assert problems[0].startswith("opencode-old.db: `part` has no time_created")
    assert "schema version 20251201000000_early_preview" in problems[0]
    assert problems[1].startswith("opencode-other.db: no `part` table")
    assert "no schema version recorded" in problems[1]


def test_rows_of_the_wrong_types_are_named_and_the_rest_read(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    mid = w.user(sid, at(DAY1))
    good = w.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    bad_rows = [
        {"type": "step-finish", "cost": 0.1, "tokens": {"input": "ten", "output": 1}},
        {"type": "step-finish", "cost": 0.1, "tokens": step_tokens(-5, 1)},
        {"type": "step-finish", "cost": 0.1, "tokens": [1, 2]},
        {"type": "step-finish", "cost": 0.1},
    ]
    for data in bad_rows:
        w.part(sid, mid, at(DAY1), data)
    w.db.execute(
        "INSERT INTO part VALUES ('prt_badtime', ?, ?, 'yesterday', 0, ?)",
        (mid, sid, '{"type":"step-finish","tokens":{"input":1,"output":1}}'),
    )
    w.db.execute(
        "INSERT INTO part VALUES ('prt_badjson', ?, ?, 1, 1, '{\"type\":\"step-finish\",')",
        (mid, sid),
    )
    deep = '{"type":"step-finish","tokens":' + "[" * 100_000 + "]" * 100_000 + "}"
    w.db.execute("INSERT INTO part VALUES ('prt_deep', ?, ?, 1, 1, ?)", (mid, sid, deep))
    # a text part that mentions step-finish is not usage, and not a problem
    w.part(sid, mid, at(DAY1), {"type": "text", "text": "what is a step-finish part?"})
    stats = oc.scan()
    assert stats.records == 1 and good
    assert len(stats.problems) == 1
    assert "skipped 7 unreadable step-finish parts (row " in stats.problems[0]
    assert "and 4 more" in stats.problems[0]
    w.assistant(sid, at(DAY1, 11), [step_tokens(1, 1)])
    assert oc.scan().records == 1  # the bad rows are behind the checkpoint: not named again
    assert oc.totals() == {(DAY1, "opencode"): (2, 11, 2, 0, 0, 0.2)}


def test_a_locked_database_is_read_later_without_an_error_storm(
    oc: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opencode_db, "BUSY_TIMEOUT_SECONDS", 0.01)
    path = oc.home / "opencode-legacy.db"
    writer = OpenCodeDb(path)
    sid = writer.session(at(DAY1))
    writer.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    # a writer holding the database alone (its log index in its own memory): readers wait
    writer.db.execute("PRAGMA locking_mode = EXCLUSIVE")
    writer.db.execute("BEGIN EXCLUSIVE")
    for attempt in range(1, opencode_db.BUSY_REPORT_AFTER):
        stats = oc.ingestor.ingest_paths([path])
        assert stats.records == 0 and stats.retry == [path] and stats.problems == [], attempt
    stats = oc.ingestor.ingest_paths([path])
    assert stats.retry == [path] and len(stats.problems) == 1
    assert "locked by another process" in stats.problems[0]
    assert not Checkpoints(oc.checkpoint).state(path)  # nothing checkpointed meanwhile
    writer.db.execute("COMMIT")
    writer.close()
    assert oc.ingestor.ingest_paths([path]).records == 1


def test_reading_never_writes_the_database(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1)])
    w.close()  # OpenCode closed: its log folded into the database
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in oc.home.iterdir()}
    assert list(before) == ["opencode.db"]
    assert oc.scan().records == 1
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in oc.home.iterdir()}
    assert after == before  # not even a shared-memory file left beside it


def test_nothing_private_reaches_the_data_folder(oc: Setup) -> None:
    w = oc.writer
    sid = w.session(at(DAY1))
    w.user(sid, at(DAY1))
    w.assistant(sid, at(DAY1), [step_tokens(10, 1), step_tokens(5, 5)])
    assert oc.scan().records == 2
    assert oc.scan().records == 0
    text = all_files_text(oc.data.home)
    for secret in (SECRET, "secret-project", "payroll", sid, "anthropic", "cat "):
        assert secret not in text, secret


# -- where, and the CLI -------------------------------------------------------------------------


def test_homes_files_and_wants(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    env = {"HOME": str(home), "XDG_DATA_HOME": str(xdg)}
    assert OpenCode().homes("", env) == [xdg / "opencode"]
    assert OpenCode().homes("", {"HOME": str(home)}) == [home / ".local" / "share" / "opencode"]
    mac = home / "Library" / "Application Support" / "opencode"
    mac.mkdir(parents=True)
    assert OpenCode("darwin").homes("", {"HOME": str(home)}) == [mac]
    assert OpenCode("linux").homes("", {"HOME": str(home)}) == [
        home / ".local" / "share" / "opencode"
    ]
    assert OpenCode().homes(str(tmp_path / "custom"), env) == [tmp_path / "custom"]
    data = xdg / "opencode"
    data.mkdir(parents=True)
    for name in (
        "opencode.db",
        "opencode.db-wal",
        "opencode.db-shm",
        "opencode-beta.db",
        "opencode-nightly.db-journal",
        "kilo.db",
        "auth.json",
    ):
        (data / name).write_bytes(b"")
    (data / "storage").mkdir()
    source = OpenCode()
    assert list(source.files(source.homes("", env))) == [
        data / "opencode-beta.db",
        data / "opencode.db",
    ]
    assert list(source.files([data / "opencode.db"])) == [data / "opencode.db"]  # a file
    # the data folder without its subfolders (snapshots, logs): the databases and their logs
    assert source.watch_dirs([data]) == []
    assert (
        source.flat_watch_dirs([data]) == source.flat_watch_dirs([data / "opencode.db"]) == [data]
    )
    assert source.wants(data / "opencode.db") and source.wants(data / "opencode.db-wal")
    assert source.file_for(data / "opencode.db-wal") == data / "opencode.db"
    assert source.file_for(data / "opencode-nightly.db-journal") == data / "opencode-nightly.db"
    assert not source.wants(data / "opencode.db-shm") and not source.wants(data / "kilo.db-wal")
    assert not source.wants(data / "auth.json")


def test_scan_source_takes_both_spellings() -> None:
    assert by_label("opencode") is OpenCode
    for label, name in (("claude-code", "claudeCode"), ("kilo-code", "kiloCode")):
        found = by_label(label)
        assert found is not None and found is by_label(name) and found.name == name
    assert by_label("nope") is None


@pytest.mark.skipif(sys.platform == "win32", reason="XDG_DATA_HOME is what OpenCode reads here")
def test_cli_scan_then_report_and_sources(home: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    w = OpenCodeDb(share / "opencode" / "opencode.db")
    d2, d3 = date_ago(2), date_ago(3)
    sid = w.session(at(d3))
    w.assistant(sid, at(d3), [step_tokens(1000, 100, 20, 5000, 300), step_tokens(50, 5)])
    w.assistant(sid, at(d2), [step_tokens(7, 3)], costs=[0.25])
    w.close()
    done = run_cli(home, "scan", "--source", "opencode", XDG_DATA_HOME=str(share))
    assert done.returncode == 0, done.stderr
    assert "opencode: 1 file, 3 records" in done.stdout
    again = run_cli(home, "scan", "--source", "opencode", XDG_DATA_HOME=str(share))
    assert "opencode: 1 file, 0 records" in again.stdout
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert days[(d3, "opencode")] == {
        "events": 2,
        "input_tokens": 1050,
        "output_tokens": 125,
        "cache_write_tokens": 300,
        "cache_read_tokens": 5000,
        "spend_cents": 0.3,
    }
    assert days[(d2, "opencode")]["spend_cents"] == 25.0
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources["opencode"]["name"] == "opencode" and sources["opencode"]["records"] == 3
    assert sources["opencode"]["enabled"] is False and sources["opencode"]["tool"] == "opencode"


@pytest.mark.parametrize("name", ["opencode", "kiloCode"])
async def test_a_sidecar_reads_a_step_committed_while_it_runs_within_seconds(
    home: Path, tmp_path: Path, name: str
) -> None:
    """OpenCode's configured folder, and the rebuilt Kilo Code's default one: the data folder
    is watched without its subfolders, a commit (a write of the write-ahead log) is a hint; a
    step lands long before the next periodic scan (60 s), and nothing private is stored."""
    user = tmp_path / "user"
    app, label = ("opencode", "opencode") if name == "opencode" else ("kilo", "kilo-code")
    folder = tmp_path / "share" / "opencode" if name == "opencode" else user / ".local/share/kilo"
    w = OpenCodeDb(folder / f"{app}.db")
    (folder / "snapshot" / "0a1b").mkdir(parents=True)  # what is not watched: the snapshots
    sid = w.session(at(date_ago(2)))
    w.assistant(sid, at(date_ago(2)), [step_tokens(100, 10), step_tokens(5, 1)])
    source: dict[str, Any] = {"enabled": True}
    if name == "opencode":
        source["path"] = str(folder)
    settings: dict[str, Any] = {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "sources": {name: source},
    }
    env = sidecar_env(home, HOME=str(user))
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "KILO_DB"):
        env.pop(variable, None)
    async with sidecar(home, settings, env=env) as client:

        async def day_of(date: str) -> dict[str, Any] | None:
            status = await client.status()
            found = [d for d in status["days"] if d["tool"] == label and d["date"] == date]
            return found[0]["totals"] if found else None

        day = await until_async(lambda: day_of(date_ago(2)), what=f"the initial scan of {app}.db")
        assert day["input_tokens"] == 105 and day["events"] == 2
        scanned = time.monotonic()
        (folder / "snapshot" / "0a1b" / "index").write_bytes(b"a snapshot")
        w.assistant(sid, datetime.now(timezone.utc), [step_tokens(7, 3), step_tokens(1, 1)])

        async def today() -> bool:
            totals = await day_of(date_ago(0))
            return totals is not None and totals["input_tokens"] == 8

        await until_async(today, timeout=10, what="the steps committed while it runs")
        assert time.monotonic() < scanned + SCAN_INTERVAL_SECONDS  # not the periodic scan
    w.close()
    assert SECRET not in all_files_text(home)


@pytest.mark.parametrize("zero_cost", [False, True], ids=["opencode", "kilo"])
def test_a_forked_session_counts_only_its_own_steps(oc: Setup, zero_cost: bool) -> None:
    """A fork writes the session's step-finish parts again, tokens and all, under new ids
    (Kilo zeroes their cost): only the steps taken in the fork after it count."""
    sid = oc.writer.session(at(DAY1))
    oc.writer.user(sid, at(DAY1, 10, 1))
    oc.writer.assistant(sid, at(DAY1, 10, 1), [step_tokens(100, 10), step_tokens(200, 20)])
    assert oc.scan().records == 2
    fork = oc.writer.fork(sid, at(DAY2), zero_cost=zero_cost)
    oc.writer.user(fork, at(DAY2, 10, 5))
    oc.writer.assistant(fork, at(DAY2, 10, 5), [step_tokens(300, 30)], costs=[0.5])
    assert oc.scan().records == 1
    assert oc.totals() == {
        (DAY1, "opencode"): (2, 300, 30, 0, 0, 0.3),
        (DAY2, "opencode"): (1, 300, 30, 0, 0, 50.0),
    }
    # read from the start (a lost checkpoint, another machine's copy): the same
    assert oc.new_ingestor().scan().records == 0
    data = DataPaths(oc.data.home.parent / "fresh")
    fresh = Ingestor(data, OpenCode(), [oc.home], IngestOptions("opencode", estimate=False))
    assert fresh.scan().records == 3


def test_a_reader_closing_the_write_ahead_log_is_no_hint(tmp_path: Path) -> None:
    """Reading a database in WAL mode (ours: read-only) opens its `-wal` writable, so its close
    is reported as a written file's: a hint would read again after each read. A commit writes
    the log ("modified"): that is the hint."""
    wal = str(tmp_path / "opencode.db-wal")
    assert not is_change(FileClosedEvent(wal))
    assert not is_change(FileClosedEvent(str(tmp_path / "kilo.db-journal")))
    assert is_change(FileModifiedEvent(wal)) and is_change(FileCreatedEvent(wal))
    assert is_change(FileClosedEvent(str(tmp_path / "s" / "ui_messages.json")))
    assert not is_change(FileOpenedEvent(wal)) and not is_change(DirModifiedEvent(str(tmp_path)))
