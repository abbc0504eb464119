"""Factory Droid, and with it the running-total rule every such source follows (`running`).

Droid cannot run here: its settings file is written in the format its peers read
(`tokenUsage{...}` rewritten in place after every call, see `tests/running_tools.py`). Every test
drives the real `Ingestor` with a settable clock and reads the ledger back.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from dx_lsp_telemetry.sources.droid import Droid
from dx_lsp_telemetry.sources.ingest import Ingestor
from tests.harness import cli_json, date_ago, run_cli
from tests.running_tools import CANARY, Clock, Home, droid_settings, utc

SID = "0b5c3f1e-8d2a-4c1b-9f3e-2a7d6c5b4e10"
D1, D2 = "2025-11-20", "2025-11-21"


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(f"{D1}T09:00:00"))


@pytest.fixture
def droid(tmp_path: Path, clock: Clock) -> Home:
    return Home(tmp_path, Droid, tmp_path / "factory", clock)


def session(droid: Home, folder: str = "-home-dev-proj", sid: str = SID) -> Path:
    return droid.tool_home / "sessions" / folder / f"{sid}.settings.json"


def call(
    droid: Home,
    when: str,
    inp: int,
    out: int,
    *,
    cw: int = 0,
    cr: int = 0,
    thinking: int = 0,
    path: Path | None = None,
) -> Path:
    """Droid rewrites the session's totals after a call at `when`; we look a minute later."""
    path = path or session(droid)
    droid.clock.at(when)
    droid_settings(path, inp=inp, out=out, cw=cw, cr=cr, thinking=thinking, when=droid.clock.now)
    droid.clock.now += timedelta(minutes=1)
    return path


def test_growth_only_each_day_on_its_day(droid: Home) -> None:
    call(droid, f"{D1}T10:00:00", 1000, 100, cw=50, cr=0, thinking=10)
    assert droid.scan().records == 1
    call(droid, f"{D1}T10:05:00", 1500, 160, cw=50, cr=400, thinking=10)  # same quarter hour
    assert droid.scan().records == 1
    call(droid, f"{D1}T23:50:00", 2000, 200, cw=60, cr=900, thinking=20)
    assert droid.scan().records == 1
    call(droid, f"{D2}T00:20:00", 2600, 230, cw=60, cr=1500, thinking=20)
    assert droid.scan().records == 1
    assert droid.scan().records == 0  # unchanged: nothing, and the file is not even parsed
    # thinking is output; the day of each growth is the day it happened
    assert droid.tokens() == {D1: (2000, 220, 60, 900), D2: (600, 30, 0, 600)}
    events = droid.totals()
    assert events[(D1, "droid")][0] == 2  # 10:00-10:15 once (sent twice, the larger kept), 23:45
    assert events[(D2, "droid")][0] == 1


def test_first_sight_is_dated_at_the_last_change_not_today(droid: Home) -> None:
    call(droid, f"{D1}T16:00:00", 5000, 500)
    droid.clock.at(f"{D2}T09:00:00")  # the source is enabled the next morning
    assert droid.scan().records == 1
    assert droid.tokens() == {D1: (5000, 500, 0, 0)}


def test_restart_rescan_and_lost_checkpoint_count_nothing_twice(droid: Home) -> None:
    call(droid, f"{D1}T10:00:00", 1000, 100)
    assert droid.scan().records == 1
    call(droid, f"{D1}T18:00:00", 3000, 300)
    assert droid.scan().records == 1
    expected = {D1: (3000, 300, 0, 0)}
    assert droid.tokens() == expected
    assert droid.process().scan().records == 0  # a restart
    droid.checkpoint.unlink()  # lost: read again from scratch, the ledger says what was counted
    assert droid.process().scan().records == 0
    assert droid.tokens() == expected
    droid.checkpoint.write_text("{not json")  # unreadable: the same
    call(droid, f"{D2}T08:00:00", 3500, 320)
    assert droid.process().scan().records == 1
    assert droid.tokens() == {**expected, D2: (500, 20, 0, 0)}
    assert droid.process().scan().records == 0


def test_a_crash_before_the_checkpoint_counts_nothing_twice(droid: Home) -> None:
    call(droid, f"{D1}T10:00:00", 1000, 100)
    droid.scan()
    saved = droid.checkpoint.read_bytes()
    call(droid, f"{D1}T12:00:00", 1800, 180)
    droid.scan()  # in the ledger; then the checkpoint is lost as if the process had died
    droid.checkpoint.write_bytes(saved)
    call(droid, f"{D1}T15:00:00", 2500, 250)  # and the session went on meanwhile
    assert droid.process().scan().records == 1
    assert droid.tokens() == {D1: (2500, 250, 0, 0)}
    droid.checkpoint.write_bytes(saved)  # the same again, the growth seen in the same hour
    assert droid.process().scan().records == 0
    assert droid.tokens() == {D1: (2500, 250, 0, 0)}


def test_a_total_that_goes_down_subtracts_nothing_and_is_reported(droid: Home) -> None:
    call(droid, f"{D1}T10:00:00", 1000, 100)
    droid.scan()
    call(droid, f"{D1}T11:00:00", 200, 20)  # the session was reset
    stats = droid.scan()
    assert stats.records == 0
    assert len(stats.problems) == 1 and "went down" in stats.problems[0]
    assert SID in stats.problems[0]  # the file is named
    call(droid, f"{D1}T12:00:00", 700, 70)  # counting resumes from the lower value
    assert droid.scan().records == 1
    assert droid.tokens() == {D1: (1500, 150, 0, 0)}


def test_a_session_in_two_folders_counts_once(droid: Home) -> None:
    first = call(droid, f"{D1}T10:00:00", 1000, 100)
    copy = session(droid, folder="-archive")
    copy.parent.mkdir(parents=True)
    shutil.copy2(first, copy)
    assert droid.scan().records == 1  # both read in one scan
    assert droid.tokens() == {D1: (1000, 100, 0, 0)}
    call(droid, f"{D1}T14:00:00", 1200, 110, path=first)  # the original goes on
    droid.scan()
    third = session(droid, folder="-moved")  # copied again later, read by a new process
    third.parent.mkdir(parents=True)
    shutil.copy2(first, third)
    assert droid.process().scan().records == 0
    droid.checkpoint.unlink()
    assert droid.process().scan().records == 0
    assert droid.tokens() == {D1: (1200, 110, 0, 0)}


def test_two_windows_reading_in_turn_count_once(droid: Home) -> None:
    other = droid.process()  # a second window's sidecar: its own source, the same data home
    call(droid, f"{D1}T10:00:00", 1000, 100)
    assert droid.scan().records + other.scan().records == 1
    call(droid, f"{D1}T10:30:00", 1500, 150)
    assert other.scan().records + droid.scan().records == 1
    call(droid, f"{D1}T11:30:00", 1600, 160)
    assert droid.scan().records + other.scan().records == 1
    assert droid.tokens() == {D1: (1600, 160, 0, 0)}


def test_torn_and_bad_files(droid: Home) -> None:
    good = call(droid, f"{D1}T10:00:00", 1000, 100, path=session(droid, sid="good"))
    torn = session(droid, sid="torn")
    torn.write_text('{"tokenUsage": {"inputTokens": 5')  # caught mid-write
    stats = droid.scan()
    assert stats.records == 1 and stats.retry == [torn] and stats.problems == []
    stats = droid.scan()  # unchanged and still cut: now it is a problem, named
    assert stats.retry == [torn] and len(stats.problems) == 1 and "torn" in stats.problems[0]
    torn.write_text(json.dumps({"tokenUsage": {"inputTokens": 5, "outputTokens": 1}}))
    assert droid.scan().records == 1
    wrong = session(droid, sid="wrong")
    wrong.write_text(json.dumps({"tokenUsage": {"inputTokens": "12", "outputTokens": -1}}))
    listed = session(droid, sid="listed")
    listed.write_text("[1, 2]")
    stats = droid.scan()
    assert stats.records == 0
    named = sorted(p.split(":")[0] for p in stats.problems)
    assert named == ["listed.settings.json", "wrong.settings.json"]
    assert "not a token count" in " ".join(stats.problems)
    assert droid.tokens() == {D1: (1005, 101, 0, 0)}
    assert good.exists()


def test_nothing_private_is_stored(droid: Home) -> None:
    call(droid, f"{D1}T10:00:00", 1000, 100, path=session(droid, folder=f"-home-{CANARY}"))
    assert droid.scan().records == 1
    stored = droid.stored_text()
    assert CANARY not in stored
    assert str(droid.tool_home) not in stored and "-home-" not in stored
    assert "factory" not in stored and "settings.json" not in stored
    assert "claude-sonnet-4-5-20250929" in stored  # the model is kept


def test_homes_files_and_wants(tmp_path: Path) -> None:
    source = Droid()
    home = tmp_path / "h"
    assert source.homes("", {"HOME": str(home)}) == [home / ".factory"]
    assert source.homes("", {"HOME": str(home), "FACTORY_DIR": "/opt/f"}) == [Path("/opt/f")]
    assert source.homes(str(tmp_path / "x" / "sessions"), {}) == [tmp_path / "x"]
    path = droid_settings(
        home / ".factory" / "sessions" / "p" / "s.settings.json", inp=1, out=1, when=utc(D1)
    )
    (path.parent / "s.jsonl").write_text("{}\n")
    assert list(source.files([home / ".factory"])) == [path]
    assert source.wants(path) and not source.wants(path.parent / "s.jsonl")


def test_cli_scan_sources_and_both_spellings(home: Path, tmp_path: Path) -> None:
    factory = tmp_path / "factory"
    when = utc(f"{date_ago(1)}T10:00:00")
    droid_settings(factory / "sessions" / "p" / f"{SID}.settings.json", inp=10, out=2, when=when)
    done = run_cli(home, "scan", "--source", "droid", "--path", str(factory))
    assert done.returncode == 0, done.stderr
    assert "droid: 1 file, 1 record" in done.stdout
    (tmp_path / "none").mkdir()
    again = run_cli(home, "scan", "--source", "claudeCode", "--path", str(tmp_path / "none"))
    assert again.returncode == 0, again.stderr  # the settings key is accepted too
    assert "claude-code: no log files found" in again.stdout
    assert run_cli(home, "scan", "--source", "nope").returncode != 0
    rows = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    for label in ("droid", "goose", "zed", "junie", "aider", "claude-code", "continue"):
        assert label in rows, label  # every source, found or not
    assert rows["droid"]["records"] == 1 and rows["zed"]["files"] == 0


def test_two_windows_reading_at_the_same_time_count_once(droid: Home) -> None:
    """Two sidecars scanning concurrently while Droid keeps rewriting the file."""
    import threading

    other = droid.process()
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_scanning(ingestor: Ingestor) -> None:
        try:
            while not stop.is_set():
                ingestor.scan()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=keep_scanning, args=(i,)) for i in (droid.ingestor, other)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 31):  # a call every 2 minutes of the tool's clock: 10:00 to 11:00
            call(droid, f"{D1}T10:{(2 * n) % 60:02d}:00".replace("T10:00", "T11:00"), n * 100, n)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    droid.scan()
    other.scan()
    assert droid.tokens() == {D1: (3000, 30, 0, 0)}


def test_a_change_time_ahead_of_the_clock_is_dated_now(droid: Home) -> None:
    path = session(droid)
    droid_settings(path, inp=100, out=10, when=utc(f"{D2}T12:00:00"))  # the tool's clock ahead
    droid.clock.at(f"{D1}T10:00:00")
    assert droid.scan().records == 1
    assert droid.tokens() == {D1: (100, 10, 0, 0)}
    droid_settings(path, inp=150, out=15, when=utc(f"{D1}T09:00:00"))  # and then behind
    droid.clock.at(f"{D1}T10:30:00")
    assert droid.scan().records == 1  # after the last count: now, never before it
    assert droid.tokens() == {D1: (150, 15, 0, 0)}
