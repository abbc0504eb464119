"""Zed's agent threads: `threads.db`, each thread a zstd-compressed JSON blob rewritten whole.

Zed cannot run here: the database follows `crates/agent/src/db.rs` (its table, its migrations,
`save_thread_sync`'s upsert of zstd level-3 JSON), the blobs compressed by the zstd command
as a stream (no content size in the frame header, as Zed's encoder writes them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dx_lsp_telemetry.sources import zed as zed_module
from dx_lsp_telemetry.sources import zstd
from dx_lsp_telemetry.sources.zed import Zed
from tests.running_tools import CANARY, Clock, Home, ZedDb, utc

D1, D2 = "2025-11-20", "2025-11-21"
TID = "a3c4e1f2-5b6d-4e7f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(f"{D1}T09:00:00"))


@pytest.fixture
def home(tmp_path: Path, clock: Clock) -> Home:
    return Home(tmp_path, Zed, tmp_path / "zed" / "threads", clock)


@pytest.fixture
def db(home: Home) -> ZedDb:
    return ZedDb(home.tool_home / "threads.db")


def save(home: Home, db: ZedDb, when: str, inp: int, out: int, **kw: object) -> None:
    """Zed saves the thread at `when` (chrono's RFC 3339); we read a minute later."""
    at = utc(when)
    db.save(kw.pop("tid", TID), at.isoformat(), inp=inp, out=out, **kw)  # type: ignore[arg-type]
    home.clock.now = at + timedelta(minutes=1)


def test_cumulative_usage_becomes_each_days_growth(home: Home, db: ZedDb) -> None:
    save(home, db, f"{D1}T10:00:00", 3000, 200, cw=1000, cr=0)
    assert home.scan().records == 1
    save(home, db, f"{D1}T23:58:00", 3500, 260, cw=1000, cr=9000)
    assert home.scan().records == 1
    save(home, db, f"{D2}T00:10:00", 3600, 300, cw=1200, cr=15000)
    assert home.scan().records == 1
    assert home.scan().records == 0
    assert home.tokens() == {D1: (3500, 260, 1000, 9000), D2: (100, 40, 200, 6000)}
    stored = home.stored_text()
    assert CANARY not in stored and "/home/dev" not in stored
    assert '"model":"claude-sonnet-4-5"' in stored


def test_json_threads_imported_threads_and_unchanged_threads(
    home: Home, db: ZedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(home, db, f"{D1}T10:00:00", 100, 10, data_type="json")
    save(home, db, f"{D1}T10:00:00", 5000, 500, tid="shared", imported=True)
    assert home.scan().records == 1
    decoded: list[bytes] = []
    real = zstd.decompress

    def counting(data: bytes) -> bytes:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(zstd, "decompress", counting)
    save(home, db, f"{D1}T11:00:00", 50, 5, tid="other")
    assert home.scan().records == 1
    assert len(decoded) == 1  # only the thread whose updated_at changed
    assert home.tokens() == {D1: (150, 15, 0, 0)}


def test_bad_threads_are_named_and_the_rest_is_read(home: Home, db: ZedDb) -> None:
    save(home, db, f"{D1}T10:00:00", 100, 10)
    db.save("cut", f"{D1}T10:00:00+00:00", inp=0, out=0, raw=b"\x28\xb5\x2f\xfd garbage")
    db.save("text", f"{D1}T10:00:00+00:00", inp=0, out=0, data_type="json", raw=b"[1, 2]")
    db.save("typed", f"{D1}T10:00:00+00:00", inp=0, out=0, data_type="lz4", raw=b"{}")
    stats = home.scan()
    assert stats.records == 1
    assert len(stats.problems) == 1
    assert stats.problems[0].startswith("threads.db: skipped 3 unreadable threads (first: cut:")
    assert home.scan().problems == []  # reported once: an unchanged bad thread is not re-read
    save(home, db, f"{D1}T11:00:00", 7, 1, tid="cut")  # rewritten whole: read now
    assert home.scan().records == 1
    assert home.tokens() == {D1: (107, 11, 0, 0)}


def test_without_a_zstd_decoder_it_says_so(
    home: Home, db: ZedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(home, db, f"{D1}T10:00:00", 100, 10)
    save(home, db, f"{D1}T10:00:00", 20, 2, tid="plain", data_type="json")
    monkeypatch.setattr(zstd, "available", lambda: False)
    stats = home.scan()
    assert stats.records == 1
    assert (
        "1 threads are zstd-compressed and this Python has no zstd decoder" in (stats.problems[0])
    )
    monkeypatch.undo()
    db.save("plain", f"{D1}T10:00:00+00:00", inp=20, out=2, data_type="json")  # any change
    home.clock.now += timedelta(seconds=1)
    assert home.scan().records == 1  # the thread left unread is read once a decoder is there
    assert home.tokens() == {D1: (120, 12, 0, 0)}


def test_a_lost_checkpoint_and_a_deleted_thread(home: Home, db: ZedDb) -> None:
    save(home, db, f"{D1}T10:00:00", 100, 10)
    save(home, db, f"{D1}T10:00:00", 40, 4, tid="gone")
    home.scan()
    db.db.execute("DELETE FROM threads WHERE id = 'gone'")
    home.scan()
    state = home.checkpoint.read_text()
    assert "gone" not in state  # a deleted thread's state goes with it
    home.checkpoint.unlink()
    save(home, db, f"{D2}T10:00:00", 130, 12)
    assert home.process().scan().records == 1
    assert home.tokens() == {D1: (140, 14, 0, 0), D2: (30, 2, 0, 0)}


def test_not_a_database(home: Home) -> None:
    path = home.tool_home / "threads.db"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 4096)
    stats = home.scan()
    assert stats.records == 0 and len(stats.problems) == 1
    assert stats.problems[0].startswith("threads.db: ")


def test_homes(tmp_path: Path) -> None:
    source = Zed()
    assert source.homes(str(tmp_path / "zeddata"), {}) == [tmp_path / "zeddata" / "threads"]
    assert source.homes(str(tmp_path / "t" / "threads.db"), {}) == [tmp_path / "t"]
    linux = source.homes("", {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d")})
    if zed_module.sys.platform.startswith("linux"):
        assert linux == [tmp_path / "d" / "zed" / "threads"]
    assert source.wants(tmp_path / "threads.db-wal")
