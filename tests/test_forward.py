"""A reader's forwarding on its own (`forward.py`): batches of the buffer ledger, the cursor that
moves only past what arrived, the count of what waits, against a count by parsing every line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dx_lsp_telemetry.events import UsageEvent
from dx_lsp_telemetry.forward import MAX_READ, Forwarding, load_cursor
from dx_lsp_telemetry.ledger import LedgerWriter, ledger_path
from dx_lsp_telemetry.paths import DataPaths

TODAY = datetime.now(timezone.utc).date()
DAYS = [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]


def at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, 10, minute, tzinfo=timezone.utc)


def event(day: date, n: int) -> UsageEvent:
    return UsageEvent(f"claude-code:{day}:{n}", at(day, n % 60), "claude-code", input_tokens=n)


def waiting_by_parsing(paths: DataPaths, fw: Forwarding, files: list[date]) -> int:
    """The oracle: usage lines after the cursor, each line parsed."""
    total = 0
    for day in files:
        path = ledger_path(paths.ledger_dir, day)
        if not os.path.exists(path):
            continue
        pos = fw.cursor.get(day.isoformat())
        start = pos.offset if pos and pos.ino == os.stat(path).st_ino else 0
        with open(path, "rb") as f:
            f.seek(start)
            for line in f.read().split(b"\n")[:-1]:
                with contextlib.suppress(ValueError):
                    total += json.loads(line).get("type") == "usage"
    return total


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    p = DataPaths(tmp_path / "remote-reader")
    p.ensure()
    return p


def test_batches_move_the_cursor_only_past_what_arrived_and_the_count_agrees(
    paths: DataPaths,
) -> None:
    writer = LedgerWriter(paths.ledger_dir)
    writer.append_events([event(d, n) for d in DAYS[:2] for n in range(4)])
    writer.append_marker(at(DAYS[1], 30))  # a session marker is no event to forward
    fw = Forwarding(paths)
    assert fw.pending(DAYS) == 8 == waiting_by_parsing(paths, fw, DAYS)

    batch = fw.take(DAYS, limit=5)
    assert [e["event_id"] for e in batch.events] == [
        *(f"claude-code:{DAYS[0]}:{n}" for n in range(4)),
        f"claude-code:{DAYS[1]}:0",
    ]
    assert batch.more is True
    assert set(batch.events[0]) == {
        "event_id", "timestamp", "tool", "input_tokens", "output_tokens",
        "cache_write_tokens", "cache_read_tokens", "spend_cents",
    }  # fmt: skip
    assert fw.done(batch.id, 3, "the UI side went away", "t1") is True
    assert fw.pending(DAYS) == 5 == waiting_by_parsing(paths, fw, DAYS)
    assert fw.problem == "the UI side went away"

    again = fw.take(DAYS, limit=500)
    assert [e["input_tokens"] for e in again.events] == [3, 0, 1, 2, 3]
    writer.append_events([event(DAYS[2], 7)])  # appended between take and done
    assert fw.done(again.id, len(again.events), None, "t2") is True
    assert fw.pending(DAYS) == 1 == waiting_by_parsing(paths, fw, DAYS)
    assert (fw.delivered, fw.last_at, fw.problem) == (8, "t2", None)

    # the cursor is on disk: a new reader (a restart) goes on from it
    reloaded = Forwarding(paths)
    assert reloaded.cursor == fw.cursor == load_cursor(reloaded.cursor_file)
    last = reloaded.take(DAYS)
    assert [e["input_tokens"] for e in last.events] == [7] and last.more is False
    assert reloaded.done(last.id + 1, 1, None, "t3") is False  # not the batch handed out
    assert reloaded.pending(DAYS) == 1
    reloaded.done(last.id, 1, None, "t3")
    assert reloaded.pending(DAYS) == 0 and reloaded.take(DAYS).events == []


def test_a_replaced_file_is_forwarded_again_and_files_out_of_the_window_are_forgotten(
    paths: DataPaths,
) -> None:
    writer = LedgerWriter(paths.ledger_dir)
    writer.append_events([event(d, 1) for d in DAYS])
    fw = Forwarding(paths)
    fw.done(fw.take(DAYS).id, 3, None, "t")
    assert fw.pending(DAYS) == 0

    path = ledger_path(paths.ledger_dir, DAYS[1])
    content = Path(path).read_bytes()
    os.remove(path)
    Path(path).write_bytes(content)  # another inode: the same bytes, read again (same ids)
    assert fw.pending(DAYS) == 1
    batch = fw.take(DAYS[1:])
    assert [e["event_id"] for e in batch.events] == [f"claude-code:{DAYS[1]}:1"]
    fw.done(batch.id, 1, None, "t")
    assert set(fw.cursor) == {d.isoformat() for d in DAYS[1:]}  # DAYS[0]: out of the window


def test_unreadable_lines_are_passed_over_with_a_warning_and_never_stall_the_reader(
    paths: DataPaths, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    writer = LedgerWriter(paths.ledger_dir)
    writer.append_events([event(TODAY, 1)])
    path = ledger_path(paths.ledger_dir, TODAY)
    with open(path, "ab") as f:
        f.write(b'{"type":"usage","event_id":5}\n')  # the ledger would refuse it too
        f.write(b"x" * (MAX_READ + 10) + b"\n")  # longer than any ledger line
        f.write(b'{"type":"usage","event_id":"torn')  # being written: not yet a line
    writer.append_events([event(TODAY, 2)])  # seals the torn line with a newline first
    fw = Forwarding(paths)
    seen: list[int] = []
    for _ in range(5):  # a few batches at most, never a loop on one place
        batch = fw.take([TODAY])
        seen += [e["input_tokens"] for e in batch.events]
        fw.done(batch.id, len(batch.events), None, "t")
        if not batch.more:
            break
    assert seen == [1, 2]
    assert batch.more is False
    assert fw.pending([TODAY]) == 0
    assert "a line of over 1 MiB, not forwarded" in caplog.text
    assert "not forwarded, unreadable" in caplog.text


def test_an_unreadable_cursor_forwards_the_window_again(paths: DataPaths) -> None:
    LedgerWriter(paths.ledger_dir).append_events([event(TODAY, 1)])
    (paths.home / "forward.json").write_text("{not json")
    fw = Forwarding(paths)
    assert fw.cursor == {} and len(fw.take([TODAY]).events) == 1
