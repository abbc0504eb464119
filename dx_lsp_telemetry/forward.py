"""A reader's forwarding: the usage this remote host's AI tools logged, handed to DX Telemetry
on the developer's own machine, which records it in its one ledger and pushes it.

In a remote window (SSH, WSL, a dev container) the sidecar on the remote host is a *reader*
(`serve --reader`): it reads the AI tools' logs there into a ledger of its own, which is only a
buffer, and never pushes. The extension beside it takes batches of that ledger's events
(`dxTelemetry/forwardTake`), records each through `dxTelemetry.recordUsage` on the UI side, and
says how many of them arrived (`dxTelemetry/forwardDone`); only then does the cursor move past
them. Every event keeps its `event_id` (a hash of the tool's own record key), so one delivered
twice (the window closed between the two steps) is one event in the developer's ledger.

The cursor is a byte offset per ledger file (and the file's inode: a file replaced is read
again from its start). Plain module: no LSP, no threads; the caller serialises the calls.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.events import from_ledger
from dx_lsp_telemetry.ledger import complete_lines, ledger_path
from dx_lsp_telemetry.paths import DataPaths, resolve_home
from dx_lsp_telemetry.private import create_private_text

log = logging.getLogger(__name__)

#: the reader's data folder, inside the host's own: its ledger is a buffer, never pushed, and
#: must not mix with a ledger that this host's own DX Telemetry pushes
READER_DIR = "remote-reader"
CURSOR_FILE = "forward.json"
#: events per batch: each is one recordUsage across the remote connection
MAX_BATCH = 500
#: bytes read from one file per batch (a week of history comes in several batches)
MAX_READ = 1 << 20
#: how a usage line of the ledger begins (`_encode`: compact JSON, `type` first)
_USAGE_PREFIX = b'{"type":"usage"'
#: what a ledger line holds beyond a recordUsage event
_LEDGER_ONLY = ("type", "recorded_at")


def reader_paths(env: Any = None) -> DataPaths:
    return DataPaths(resolve_home(env).home / READER_DIR)


def host_has_own_ledger(env: Any = None) -> bool:
    """This host runs DX Telemetry itself (its data folder holds ledger files): it reads and
    pushes its own AI tools' usage, so a reader here must forward none of it (the same log
    lines would then be pushed from two machines)."""
    ledger = resolve_home(env).ledger_dir
    try:
        return any(name.endswith(".jsonl") for name in os.listdir(ledger))
    except OSError:
        return False


@dataclass(frozen=True)
class FilePos:
    offset: int
    ino: int


Cursor = dict[str, FilePos]


def load_cursor(path: Path) -> Cursor:
    """The saved cursor; an unreadable one is empty (everything in the window is forwarded
    again: safe, the event ids make it the same events)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = raw["files"]
        return {
            str(name): FilePos(int(pos["offset"]), int(pos["ino"])) for name, pos in files.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning(
            "the forward cursor %s is unreadable (%s): forwarding again from the start "
            "of the window",
            path,
            exc,
        )
        return {}


def save_cursor(path: Path, cursor: Cursor) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with create_private_text(tmp) as f:
        json.dump(
            {"files": {n: {"offset": p.offset, "ino": p.ino} for n, p in sorted(cursor.items())}},
            f,
        )
        f.write("\n")
    os.replace(tmp, path)


@dataclass
class Batch:
    id: int
    #: recordUsage events, oldest file first, in the order they were written
    events: list[dict[str, Any]]
    #: where each event's line ends: (file name, offset after it, inode)
    ends: list[tuple[str, int, int]]
    #: the cursor when the batch was taken, and after all of it (lines that are no events too)
    start: Cursor
    end: Cursor
    more: bool

    def cursor_after(self, delivered: int) -> Cursor:
        """The cursor once the first `delivered` events arrived."""
        if delivered >= len(self.events):
            return dict(self.end)
        cursor = dict(self.start)
        for name, offset, ino in self.ends[:delivered]:
            cursor[name] = FilePos(offset, ino)
        return cursor


def _start_of(cursor: Cursor, name: str, ino: int, size: int) -> int:
    pos = cursor.get(name)
    if pos is None or pos.ino != ino or pos.offset > size:
        return 0  # new, replaced or cut short: read from its start
    return pos.offset


def take(
    ledger_dir: Path, cursor: Cursor, files: Iterable[date], batch_id: int, limit: int = MAX_BATCH
) -> Batch:
    """Up to `limit` events after `cursor` in the ledger files of `files` (oldest first)."""
    events: list[dict[str, Any]] = []
    ends: list[tuple[str, int, int]] = []
    end = dict(cursor)
    more = False
    for utc_date in sorted(files):
        name = utc_date.isoformat()
        path = ledger_path(ledger_dir, utc_date)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                start = _start_of(cursor, name, st.st_ino, st.st_size)
                f.seek(start)
                data = f.read(MAX_READ)
        except FileNotFoundError:
            continue
        consumed = start
        if len(data) == MAX_READ and b"\n" not in data:  # no ledger line is that long
            consumed = _past_line(path, start + len(data))
            log.warning("ledger %s at byte %d: a line of over 1 MiB, not forwarded", name, start)
        for offset, raw in complete_lines(data, start):
            if len(events) >= limit:
                more = True
                break
            consumed = offset + len(raw) + 1
            event = _event_of(raw, name, offset)
            if event is not None:
                events.append(event)
                ends.append((name, consumed, st.st_ino))
        end[name] = FilePos(consumed, st.st_ino)
        if more or start + len(data) < st.st_size:
            more = True  # the limit, or this file was read only in part: the rest next time
            break
    kept = {d.isoformat() for d in files}
    end = {n: p for n, p in end.items() if n in kept}  # files out of the window: forgotten
    return Batch(batch_id, events, ends, dict(cursor), end, more)


def _past_line(path: str, offset: int) -> int:
    """Where the line that runs on past `offset` ends (after its newline), or the file's end."""
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(MAX_READ):
            nl = chunk.find(b"\n")
            if nl >= 0:
                return offset + nl + 1
            offset += len(chunk)
    return offset


def _event_of(raw: bytes, name: str, offset: int) -> dict[str, Any] | None:
    """A usage line as a recordUsage event; None for a session marker or a bad line."""
    if not raw.startswith(_USAGE_PREFIX):
        return None
    try:
        line = json.loads(raw.decode())
        from_ledger(line)  # what the ledger would refuse is not sent either
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ledger %s at byte %d: not forwarded, unreadable (%s)", name, offset, exc)
        return None
    return {k: v for k, v in line.items() if k not in _LEDGER_ONLY}


def count_usage(path: str, start: int, end: int) -> tuple[int, int]:
    """Usage lines that begin in [start, end) and are complete, and where the last one ends:
    counted, not parsed (JSON escapes every quote inside a string, so the opening of a usage
    line occurs nowhere else)."""
    count, done = 0, start
    with open(path, "rb") as f:
        f.seek(start)
        while start < end and (chunk := f.read(min(MAX_READ, end - start))):
            last = chunk.rfind(b"\n") + 1
            if not last:  # no complete line in a whole chunk: count it next time
                break
            count += chunk.count(_USAGE_PREFIX, 0, last)
            start += last
            done = start
            f.seek(start)
    return count, done


@dataclass
class _Counted:
    """What `pending` counted of one file: up to which byte, and how many lines are waiting."""

    ino: int
    upto: int
    waiting: int


@dataclass
class Forwarding:
    """A reader's forwarding state: the saved cursor, the batch handed out, what happened."""

    paths: DataPaths
    cursor: Cursor = field(default_factory=dict)
    batch: Batch | None = None
    delivered: int = 0
    #: what the extension last said went wrong (the UI side unreachable, ...); None: nothing
    problem: str | None = None
    last_at: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: per file, what was counted: each status then reads only the bytes appended since
    _counted: dict[str, _Counted] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cursor = load_cursor(self.cursor_file)

    @property
    def cursor_file(self) -> Path:
        return self.paths.home / CURSOR_FILE

    def take(self, files: list[date], limit: int = MAX_BATCH) -> Batch:
        self.batch = take(self.paths.ledger_dir, self.cursor, files, next(self._ids), limit)
        return self.batch

    def done(self, batch_id: int, delivered: int, problem: str | None, now: str) -> bool:
        """The extension delivered the first `delivered` events of batch `batch_id`; False if
        that batch is not the one handed out last (a restart): nothing moves."""
        self.problem = problem
        batch = self.batch
        if batch is None or batch.id != batch_id:
            return False
        delivered = max(0, min(delivered, len(batch.events)))
        for name, _, ino in batch.ends[:delivered]:
            counted = self._counted.get(name)
            if counted is not None and counted.ino == ino:
                counted.waiting -= 1  # may go below 0 until the bytes after `upto` are counted
        self.cursor = batch.cursor_after(delivered)
        save_cursor(self.cursor_file, self.cursor)
        self.batch = None
        if delivered:
            self.delivered += delivered
            self.last_at = now
        return True

    def pending(self, files: list[date]) -> int:
        """Usage lines after the cursor in `files`, reading only what was appended since the
        last count (a week of backlog is read once, not once a batch)."""
        total = 0
        names = set()
        for utc_date in files:
            name = utc_date.isoformat()
            path = ledger_path(self.paths.ledger_dir, utc_date)
            try:
                st = os.stat(path)
            except OSError:
                continue
            names.add(name)
            counted = self._counted.get(name)
            if counted is None or counted.ino != st.st_ino or counted.upto > st.st_size:
                start = _start_of(self.cursor, name, st.st_ino, st.st_size)
                counted = self._counted[name] = _Counted(st.st_ino, start, 0)
            try:
                more, counted.upto = count_usage(path, counted.upto, st.st_size)
            except OSError:
                more = 0
            counted.waiting += more
            total += max(0, counted.waiting)
        self._counted = {n: c for n, c in self._counted.items() if n in names}
        return total
