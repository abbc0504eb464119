"""Goose: `sessions.db`, read strictly read-only while Goose writes it.

Goose cannot run here: the database is made with its schema (version 13 plus the cache
columns) and changed as its `record_usage_metrics` does (see `tests/running_tools.py`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dx_lsp_telemetry.sources import goose as goose_module
from dx_lsp_telemetry.sources import sqlite_ro
from dx_lsp_telemetry.sources.goose import Goose
from tests.running_tools import CANARY, Clock, GooseDb, Home, touch, utc

D1, D2 = "2025-11-20", "2025-11-21"


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(f"{D1}T09:00:00"))


@pytest.fixture
def home(tmp_path: Path, clock: Clock) -> Home:
    return Home(tmp_path, Goose, tmp_path / "goose" / "sessions", clock)


@pytest.fixture
def db(home: Home) -> GooseDb:
    made = GooseDb(home.tool_home / "sessions.db")
    made.session("20251120_1", f"{D1} 08:00:00")
    return made


def look(home: Home, when: str) -> None:
    """We read a minute after Goose wrote at `when` (SQLite's `datetime('now')` text)."""
    home.clock.now = utc(when.replace(" ", "T")) + timedelta(minutes=1)


def settle(db: GooseDb) -> None:
    """Files last written long ago: their signature is trusted to skip the next read."""
    old = datetime.now(timezone.utc) - timedelta(minutes=5)
    for name in ("sessions.db", "sessions.db-wal", "sessions.db-shm"):
        path = db.path.with_name(name)
        if path.exists():
            touch(path, old)


def test_input_without_the_cache_cost_and_days(home: Home, db: GooseDb) -> None:
    db.call("20251120_1", f"{D1} 10:00:00", inp=1200, out=80, cr=900, cw=200, cost=0.0125)
    look(home, f"{D1} 10:00:00")
    assert home.scan().records == 1
    db.call("20251120_1", f"{D1} 23:55:00", inp=1500, out=40, cr=1400, cw=0, cost=0.01)
    db.call("20251120_1", f"{D2} 00:30:00", inp=300, out=30, cr=0, cw=100, cost=0.005)
    look(home, f"{D2} 00:30:00")  # both calls seen at once: the growth is dated at 00:30
    assert home.scan().records == 1
    assert home.tokens() == {D1: (100, 80, 200, 900), D2: (300, 70, 100, 1400)}
    spend = {day: t[5] for (day, _), t in home.totals().items()}
    assert spend == {D1: 1.25, D2: 1.5}  # Goose's own cost, in cents
    assert home.scan().records == 0


def test_hidden_sessions_are_skipped_and_models_kept(home: Home, db: GooseDb) -> None:
    db.session("hidden_1", f"{D1} 08:00:00", kind="hidden")
    db.session("20251120_2", f"{D1} 08:00:00", model="gpt-5")
    db.call("hidden_1", f"{D1} 10:00:00", inp=999, out=9)
    db.call("20251120_2", f"{D1} 10:00:00", inp=100, out=10)
    db.call("20251120_1", f"{D1} 10:00:00", inp=50, out=5)
    look(home, f"{D1} 10:00:00")
    assert home.scan().records == 2
    assert home.tokens() == {D1: (150, 15, 0, 0)}
    stored = home.stored_text()
    assert '"model":"gpt-5"' in stored and '"model":"claude-sonnet-4-5"' in stored
    assert CANARY not in stored and "working_dir" not in stored and "/home/dev" not in stored


def test_reads_never_write_and_a_live_writer_does_not_disturb(home: Home, db: GooseDb) -> None:
    db.call("20251120_1", f"{D1} 10:00:00", inp=100, out=10)
    # the data (the database, its WAL) is never written; `-shm` is SQLite's shared index, in
    # which every reader marks what it reads
    names = sorted(p.name for p in db.path.parent.iterdir())
    data = {n: db.path.with_name(n).read_bytes() for n in ("sessions.db", "sessions.db-wal")}
    look(home, f"{D1} 10:00:00")
    assert home.scan().records == 1
    assert sorted(p.name for p in db.path.parent.iterdir()) == names
    assert {n: db.path.with_name(n).read_bytes() for n in data} == data
    db.db.execute("BEGIN IMMEDIATE")  # Goose in the middle of a write (WAL: readers go on)
    db.call("20251120_1", f"{D1} 10:05:00", inp=100, out=10)
    assert home.scan().records == 0  # the uncommitted call is not seen
    db.db.execute("COMMIT")
    assert home.scan().records == 1
    assert home.tokens() == {D1: (200, 20, 0, 0)}


def test_a_locked_database_is_read_again_later(home: Home) -> None:
    made = GooseDb(home.tool_home / "sessions.db", wal=False)  # rollback journal: writers lock
    made.session("s1", f"{D1} 08:00:00")
    made.call("s1", f"{D1} 10:00:00", inp=10, out=1)
    made.db.execute("BEGIN EXCLUSIVE")
    look(home, f"{D1} 10:00:00")
    stats = home.scan()
    assert (stats.records, stats.retry, stats.problems) == (0, [made.path], [])
    made.db.execute("COMMIT")
    assert home.scan().records == 1


def test_corrupt_database_and_bad_rows_are_named(tmp_path: Path, clock: Clock) -> None:
    broken = tmp_path / "a" / "sessions.db"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not an SQLite database" * 100)
    good = GooseDb(tmp_path / "b" / "sessions.db")
    good.session("ok", f"{D1} 08:00:00")
    good.session("bad", f"{D1} 08:00:00")
    good.call("ok", f"{D1} 10:00:00", inp=10, out=1)
    good.set("bad", "accumulated_input_tokens", "lots")
    good.set("bad", "accumulated_output_tokens", 4)
    home = Home(tmp_path, Goose, tmp_path / "a", clock)
    home.ingestor.homes = [tmp_path / "a", tmp_path / "b"]
    clock.at(f"{D1}T10:01:00")
    stats = home.scan()
    assert stats.records == 1
    problems = sorted(stats.problems)
    assert len(problems) == 2
    assert problems[0].startswith("sessions.db: not a readable Goose database")
    assert "skipped 1 unreadable sessions (first: bad: not a token count" in problems[1]
    assert home.tokens() == {D1: (10, 1, 0, 0)}


def test_a_reset_subtracts_nothing(home: Home, db: GooseDb) -> None:
    db.call("20251120_1", f"{D1} 10:00:00", inp=1000, out=100)
    look(home, f"{D1} 10:00:00")
    home.scan()
    db.set("20251120_1", "accumulated_input_tokens", 100)
    db.set("20251120_1", "accumulated_output_tokens", 10)
    stats = home.scan()
    assert stats.records == 0 and "went down" in stats.problems[0]
    db.call("20251120_1", f"{D1} 11:00:00", inp=50, out=5)
    look(home, f"{D1} 11:00:00")
    assert home.scan().records == 1
    assert home.tokens() == {D1: (1050, 105, 0, 0)}


def test_a_copied_database_and_a_lost_checkpoint_count_once(
    tmp_path: Path, home: Home, db: GooseDb
) -> None:
    db.call("20251120_1", f"{D1} 10:00:00", inp=1000, out=100)
    look(home, f"{D1} 10:00:00")
    home.scan()
    db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    backup = tmp_path / "backup" / "sessions"
    backup.mkdir(parents=True)
    shutil.copy2(db.path, backup / "sessions.db")
    home.ingestor.homes = [home.tool_home, backup]
    assert home.scan().records == 0
    home.checkpoint.unlink()
    other = home.process()
    other.homes = [backup, home.tool_home]
    assert other.scan().records == 0
    db.call("20251120_1", f"{D2} 10:00:00", inp=10, out=1)
    look(home, f"{D2} 10:00:00")
    assert other.scan().records == 1
    assert home.tokens() == {D1: (1000, 100, 0, 0), D2: (10, 1, 0, 0)}


def test_unchanged_database_is_not_opened_and_wal_hints_map_to_it(
    home: Home, db: GooseDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.call("20251120_1", f"{D1} 10:00:00", inp=100, out=10)
    settle(db)
    look(home, f"{D1} 10:00:00")
    assert home.scan().records == 1

    def refuse(path: Path) -> None:
        raise AssertionError("an unchanged database was opened")

    monkeypatch.setattr(sqlite_ro, "open_ro", refuse)
    assert home.scan().records == 0
    monkeypatch.undo()
    db.call("20251120_1", f"{D1} 10:05:00", inp=100, out=10)  # only the -wal changes
    wal = db.path.with_name("sessions.db-wal")
    source = home.ingestor.source
    assert source.wants(wal) and source.file_for(wal) == db.path
    assert home.ingestor.ingest_paths([wal, db.path]).records == 1
    assert home.tokens() == {D1: (200, 20, 0, 0)}


def test_an_old_schema_without_cache_or_cost_columns(home: Home) -> None:
    path = home.tool_home / "sessions.db"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, description TEXT, working_dir TEXT,"
        " created_at TIMESTAMP, updated_at TIMESTAMP, total_tokens INTEGER,"
        " input_tokens INTEGER, output_tokens INTEGER, accumulated_total_tokens INTEGER,"
        " accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER);"
        f"INSERT INTO sessions VALUES ('s', 'x', '/w', '{D1} 08:00:00', '{D1} 10:00:00',"
        " 30, 20, 10, 330, 300, 30);"
    )
    old.close()
    home.clock.at(f"{D1}T10:01:00")
    assert home.scan().records == 1
    assert home.tokens() == {D1: (300, 30, 0, 0)}  # the accumulated columns, not the last call


def test_homes_files_and_wants(tmp_path: Path) -> None:
    source = Goose()
    env = {"HOME": str(tmp_path)}
    if os.name == "posix":
        found = source.homes("", env)[0]
        assert found.parts[-2:] == ("goose", "sessions")
    root = tmp_path / "root"
    assert source.homes("", {**env, "GOOSE_PATH_ROOT": str(root)}) == [root / "data" / "sessions"]
    assert source.homes(str(tmp_path / "x" / "sessions.db"), env) == [tmp_path / "x"]
    assert not source.wants(tmp_path / "sessions.db.bak")
    assert goose_module.DB_NAME == "sessions.db"
