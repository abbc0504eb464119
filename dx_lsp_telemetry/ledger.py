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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from dx_lsp_telemetry.days import format_ts, parse_ts
from dx_lsp_telemetry.events import UsageEvent, from_ledger

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 10.0


class LedgerError(OSError):
    """The ledger cannot be written (locked, unwritable, disk full)."""


@dataclass(frozen=True)
class LedgerEntry:
    """A usage line as read back, with where it sits (for dedupe order and `late`)."""

    event: UsageEvent
    recorded_at: str
    file_date: date
    offset: int

    @property
    def order(self) -> tuple[str, date, int]:
        return (self.recorded_at, self.file_date, self.offset)


@dataclass(frozen=True)
class SessionMarker:
    timestamp: datetime
    file_date: date
    offset: int


def ledger_path(ledger_dir: Path, utc_date: date) -> Path:
    return ledger_dir / f"{utc_date.isoformat()}.jsonl"


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
        self._lock = FileLock(ledger_dir / ".lock", timeout=LOCK_TIMEOUT_SECONDS)
        self._unsynced: set[Path] = set()

    def locked(self) -> FileLock:
        """The append lock, for callers that must read and write atomically (dedupe)."""
        try:
            self.ledger_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger folder {self.ledger_dir}: {exc.strerror}"
            ) from exc
        return self._lock

    def append_events(self, events: Iterable[UsageEvent]) -> None:
        self.append_lines((e.timestamp, e.to_ledger()) for e in events)

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
        try:
            with self.locked():
                # stamped under the lock, so recorded_at orders appends across processes
                stamp = format_ts(datetime.now(timezone.utc))
                for utc_date, file_lines in by_file.items():
                    self._write(
                        ledger_path(self.ledger_dir, utc_date),
                        [_encode({**line, "recorded_at": stamp}) for line in file_lines],
                    )
        except Timeout as exc:
            raise LedgerError(
                f"the ledger is locked by another process for over {LOCK_TIMEOUT_SECONDS:.0f} s "
                f"({exc.lock_file})"
            ) from exc

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
        try:
            with self.locked():
                stamp = format_ts(datetime.now(timezone.utc))
                tail = f',"recorded_at":"{stamp}"}}\n'
                for utc_date, file_lines in by_file.items():
                    text = tail.join(file_lines) + tail
                    self._write(ledger_path(self.ledger_dir, utc_date), [text.encode()])
        except Timeout as exc:
            raise LedgerError(
                f"the ledger is locked by another process for over {LOCK_TIMEOUT_SECONDS:.0f} s "
                f"({exc.lock_file})"
            ) from exc

    def _write(self, path: Path, encoded: list[bytes]) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerError(f"cannot open {path}: {exc.strerror}") from exc
        size = -1
        try:
            size = os.fstat(fd).st_size
            prefix = b""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                prefix = b"\n"  # seal a line torn by a crash so it cannot absorb this one
            write_all(fd, prefix + b"".join(encoded))
        except OSError as exc:
            if size >= 0:
                # A refused append leaves nothing: a torn line would be skipped with a warning
                # at best, and one cut just before its newline would count, once sealed, an
                # event the caller was told is not recorded. Safe: appends hold the lock.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            raise LedgerError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        self._unsynced.add(path)

    @property
    def has_unsynced(self) -> bool:
        return bool(self._unsynced)

    def sync(self) -> None:
        """fsync the files written since the last sync (a power cut then loses nothing)."""
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


def fsync_path(path: Path) -> None:
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


@dataclass
class ReadResult:
    entries: list[LedgerEntry]
    markers: list[SessionMarker]
    next_offset: int
    #: bytes after the last newline: a write in progress, or a line torn by a crash
    trailing_bytes: int
    problems: list[str]


def read_from(path: Path, file_date: date, offset: int) -> ReadResult:
    """Parse the complete lines of `path` from `offset`. Bad lines are skipped and named."""
    result = ReadResult([], [], offset, 0, [])
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return result
    end = data.rfind(b"\n") + 1
    result.trailing_bytes = len(data) - end
    result.next_offset = offset + end
    pos = offset
    for raw in _lines(data[:end]):
        line_offset = pos
        pos += len(raw) + 1
        if not raw.strip():
            continue
        try:
            _parse_line(raw, file_date, line_offset, result)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            result.problems.append(
                f"{path.name} at byte {line_offset}: skipped a malformed ledger line ({exc})"
            )
    return result


def _lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        nl = data.index(b"\n", start)
        yield data[start:nl]
        start = nl + 1


def _parse_line(raw: bytes, file_date: date, offset: int, out: ReadResult) -> None:
    line = json.loads(raw)
    if not isinstance(line, dict):
        raise TypeError("not a JSON object")
    kind = line.get("type")
    if kind == "usage":
        event = from_ledger(line)
        recorded_at = line.get("recorded_at")
        out.entries.append(
            LedgerEntry(
                event, recorded_at if isinstance(recorded_at, str) else "", file_date, offset
            )
        )
    elif kind == "session":
        out.markers.append(SessionMarker(parse_ts(line["timestamp"]), file_date, offset))
    else:
        raise ValueError(f"unknown line type {kind!r}")
