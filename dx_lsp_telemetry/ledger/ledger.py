"""The ledger: one JSONL file per UTC date under `<home>/ledger/`, appended by many processes.

Writers hold one file lock per append and start each write on a fresh line, so a line torn by a
crash never swallows the next event. Readers tail files from a byte offset and never consume an
unterminated last line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from dx_lsp_telemetry.ledger.append_lock import AppendLock, LockTimeout
from dx_lsp_telemetry.record.events import UsageEvent, from_ledger
from dx_lsp_telemetry.settings.days import format_ts, parse_ts
from dx_lsp_telemetry.util.private import open_private, private_dir

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 10.0
#: ledger files kept open for appending (today's, mostly); none on Windows, where an open
#: file cannot be deleted or renamed by anyone else
KEEP_OPEN = 0 if sys.platform == "win32" else 4


class LedgerError(OSError):
    """The ledger cannot be written (locked, unwritable, disk full)."""


class LedgerBusy(LedgerError):
    """Another writer holds the append lock (for longer than the caller would wait)."""


class UsageLine(NamedTuple):
    event: UsageEvent
    #: when the line was written (stamped under the append lock): orders versions of an event
    recorded_at: str


class SessionLine(NamedTuple):
    timestamp: datetime


@dataclass(frozen=True)
class Appended:
    """What one append put into one file, so the index can take it in without reading it back."""

    file_date: date
    #: where `payload` begins in the file
    start: int
    payload: bytes
    #: a torn line was sealed with a newline just before `start`
    sealed: bool
    stamp: str
    #: the events written and where each line starts
    lines: list[tuple[UsageEvent, int]]
    #: the file written to (a file replaced since is not this one)
    ino: int


def ledger_path(ledger_dir: Path | str, utc_date: date) -> str:
    # a str, not a Path: this is on every append's path, and pathlib's `/` costs 10 us
    return os.path.join(ledger_dir, f"{utc_date.isoformat()}.jsonl")


def file_date_of(path: Path) -> date | None:
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        return None


def list_ledger_dates(ledger_dir: Path) -> list[date]:
    try:
        names = os.listdir(ledger_dir)
    except FileNotFoundError:
        return []
    found = (file_date_of(Path(n)) for n in names if n.endswith(".jsonl"))
    return sorted(d for d in found if d is not None)


class LedgerWriter:
    """Appends lines; an append is in the OS (survives `kill -9`) when `append` returns."""

    def __init__(self, ledger_dir: Path) -> None:
        self.ledger_dir = ledger_dir
        self._lock = AppendLock(ledger_dir / ".lock", LOCK_TIMEOUT_SECONDS)
        #: descriptors kept open (under the append lock), and where our last append ended
        self._fds: dict[str, int] = {}
        self._ends: dict[str, int] = {}
        #: written since the last sync; appends come from several threads, the sync from one
        self._unsynced: set[str] = set()
        self._unsynced_lock = threading.Lock()

    @contextmanager
    def locked(self, wait: float | None = None) -> Iterator[None]:
        """The append lock, for callers that must read and write atomically (dedupe); taken
        again by the appends themselves (it is reentrant). `wait`: how long to wait for
        another holder (default 10 s; 0: not at all)."""
        try:
            try:
                self._lock.acquire(wait)
            except FileNotFoundError:  # a new data folder (or one removed): create it
                self._create_folder()
                self._lock.acquire(wait)
        except LockTimeout as exc:
            raise LedgerBusy(f"the ledger cannot be written: {exc}") from exc
        except OSError as exc:
            raise LedgerError(f"cannot lock {self._lock.path}: {exc.strerror or exc}") from exc
        try:
            yield
        finally:
            self._lock.release()

    def _create_folder(self) -> None:
        try:
            private_dir(self.ledger_dir, within=self.ledger_dir.parent)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise LedgerError(f"cannot create the ledger folder {self.ledger_dir}: {why}") from exc

    def append_events(self, events: Iterable[UsageEvent]) -> list[Appended]:
        """One write per file for all `events`; what was written where."""
        by_file: dict[date, list[UsageEvent]] = {}
        for event in events:
            by_file.setdefault(event.timestamp.astimezone(timezone.utc).date(), []).append(event)
        appended: list[Appended] = []
        with self.locked():
            stamp = format_ts(datetime.now(timezone.utc))
            try:
                for utc_date, file_events in by_file.items():
                    encoded = [
                        _encode({**e.to_ledger(), "recorded_at": stamp}) for e in file_events
                    ]
                    path = ledger_path(self.ledger_dir, utc_date)
                    start, sealed, ino = self._write(path, encoded)
                    lines, at = [], start
                    for i, event in enumerate(file_events):
                        lines.append((event, at))
                        at += len(encoded[i])
                    payload = b"".join(encoded)
                    appended.append(Appended(utc_date, start, payload, sealed, stamp, lines, ino))
            except LedgerError:
                # the group is answered as one: refused, none of it may stay in other files
                for done in appended:
                    path = ledger_path(self.ledger_dir, done.file_date)
                    with contextlib.suppress(OSError):
                        os.truncate(path, done.start - int(done.sealed))
                raise
        return appended

    def append_marker(self, ts: datetime) -> None:
        self.append_lines(
            [(ts, {"type": "session", "timestamp": format_ts(ts), "pid": os.getpid()})]
        )

    def append_lines(self, lines: Iterable[tuple[datetime, dict[str, Any]]]) -> None:
        """Write lines into the files of their UTC dates (taking the lock if not held)."""
        by_file: dict[date, list[dict[str, Any]]] = {}
        for ts, line in lines:
            by_file.setdefault(ts.astimezone(timezone.utc).date(), []).append(line)
        if not by_file:
            return
        with self.locked():
            # stamped under the lock, so recorded_at orders appends across processes
            stamp = format_ts(datetime.now(timezone.utc))
            for utc_date, file_lines in by_file.items():
                self._write(
                    ledger_path(self.ledger_dir, utc_date),
                    [_encode({**line, "recorded_at": stamp}) for line in file_lines],
                )

    def append_encoded(self, lines: Iterable[tuple[date, str]]) -> None:
        """Write lines already encoded (as `_encode` encodes them, without `recorded_at`: e.g.
        by `sources.ingest.LedgerLines`) into the files of their UTC dates, stamped under the
        lock as `append_lines` stamps them: the same bytes, for less work per line."""
        by_file: dict[date, list[str]] = {}
        for utc_date, text in lines:
            file_lines = by_file.get(utc_date)
            if file_lines is None:
                file_lines = by_file[utc_date] = []
            file_lines.append(text[:-1])  # without its `}`: recorded_at goes last
        if not by_file:
            return
        with self.locked():
            stamp = format_ts(datetime.now(timezone.utc))
            tail = f',"recorded_at":"{stamp}"}}\n'
            for utc_date, file_lines in by_file.items():
                text = tail.join(file_lines) + tail
                self._write(ledger_path(self.ledger_dir, utc_date), [text.encode()])

    def _write(self, path: str, encoded: list[bytes]) -> tuple[int, bool, int]:
        """Append; where the payload begins, whether a torn line was sealed, the inode."""
        try:
            fd, size, ino = self._open(path)
        except OSError as exc:
            raise LedgerError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            prefix = b""
            if size and self._ends.get(path) != size and os.pread(fd, 1, size - 1) != b"\n":
                prefix = b"\n"  # seal a line torn by a crash so it cannot absorb this one
            write_all(fd, prefix + b"".join(encoded))
            start = size + len(prefix)
            self._ends[path] = start + sum(len(line) for line in encoded)
        except OSError as exc:
            # A refused append leaves nothing: a torn line would be skipped with a warning at
            # best, and one cut just before its newline would count, once sealed, an event
            # the caller was told is not recorded. Safe: appends hold the lock.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            self._close(path)
            raise LedgerError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            if KEEP_OPEN == 0:
                self._close(path)
        with self._unsynced_lock:
            self._unsynced.add(path)
        return start, bool(prefix), ino

    def _open(self, path: str) -> tuple[int, int, int]:
        """A descriptor to append to `path`, the file's size and inode. Kept open between appends
        (an open and a close per event are a third of an append's syscalls), while it is
        still the file at `path`: one moved away or replaced must not take an event."""
        fd = self._fds.get(path)
        if fd is not None:
            st = os.fstat(fd)
            try:
                here = os.stat(path)
            except FileNotFoundError:
                here = None
            if here is not None and (here.st_ino, here.st_dev) == (st.st_ino, st.st_dev):
                return fd, st.st_size, st.st_ino
            self._close(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            fd = open_private(path, os.O_RDWR | os.O_APPEND)
        while len(self._fds) >= max(KEEP_OPEN, 1):
            self._close(next(iter(self._fds)))
        self._fds[path] = fd
        st = os.fstat(fd)
        return fd, st.st_size, st.st_ino

    def _close(self, path: str) -> None:
        self._ends.pop(path, None)
        fd = self._fds.pop(path, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def has_unsynced(self) -> bool:
        return bool(self._unsynced)

    def sync(self) -> None:
        """fsync the files written since the last sync (a power cut then loses nothing)."""
        with self._unsynced_lock:
            pending, self._unsynced = self._unsynced, set()
        for path in pending:
            fsync_path(path)


def write_all(fd: int, data: bytes) -> None:
    """`os.write` until all of `data` is written. A write cut short (a full disk, a file size
    limit) is retried, so the failure surfaces as the OSError that names its cause."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, f"write returned {written}")
        view = view[written:]


def fsync_path(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(line: dict[str, Any]) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def parse_line(raw: bytes) -> UsageLine | SessionLine:
    """One ledger line; raises ValueError, KeyError, TypeError or AttributeError if it is bad."""
    line = json.loads(raw.decode())  # a str: json would first guess the bytes' encoding
    if not isinstance(line, dict):
        raise TypeError("not a JSON object")
    kind = line.get("type")
    if kind == "usage":
        recorded_at = line.get("recorded_at")
        return UsageLine(from_ledger(line), recorded_at if isinstance(recorded_at, str) else "")
    if kind == "session":
        return SessionLine(parse_ts(line["timestamp"]))
    raise ValueError(f"unknown line type {kind!r}")


def complete_lines(data: bytes, base: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without its newline) for each complete line of `data`, read at `base`."""
    start = 0
    end = data.rfind(b"\n") + 1
    while start < end:
        nl = data.index(b"\n", start)
        yield base + start, data[start:nl]
        start = nl + 1
