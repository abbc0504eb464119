"""The ledger files as the index knows them: how far each was read, and proof it is still
the same file (inode, the bytes at its start and before the indexed end, a CRC of all that
was read for a file that changed without growing). A file that fails the proof raises
IndexStale: the index is rebuilt from the ledger, never trusted over it."""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dx_lsp_telemetry.ledger.index_rows import Place, Version, version_of
from dx_lsp_telemetry.ledger.ledger import UsageLine, file_date_of, ledger_path, parse_line

log = logging.getLogger(__name__)

#: a ledger file is read (and indexed) this much at a time: memory stays flat for any size
READ_CHUNK = 4 << 20
#: a folder changed this recently is listed again: its mtime may not show a change yet
RELIST_NS = 1_000_000_000
#: bytes kept from the start and from the indexed end of each file, to know it again
FINGERPRINT = 64

SCHEMA = """
CREATE TABLE files(
    day INTEGER PRIMARY KEY, off INTEGER NOT NULL, lines INTEGER NOT NULL,
    ino INTEGER NOT NULL, mtime INTEGER NOT NULL, head BLOB NOT NULL, tail BLOB NOT NULL,
    crc INTEGER NOT NULL);
"""


class IndexStale(Exception):
    """The ledger changed behind the index: rebuild."""


@dataclass(frozen=True)
class FileRow:
    day: int
    #: bytes indexed: up to the end of the last complete line read
    off: int
    lines: int
    ino: int
    #: 0: look again next time (a torn last line was left unread)
    mtime: int
    head: bytes
    tail: bytes
    crc: int

    def grown_by(self, payload: bytes, ino: int, mtime: int, lines: int) -> FileRow:
        """This file after `payload` (`lines` complete lines) was appended at its end."""
        head = self.head if len(self.head) >= FINGERPRINT else (self.head + payload)
        return FileRow(
            self.day,
            self.off + len(payload),
            self.lines + lines,
            ino,
            mtime,
            head[:FINGERPRINT],
            (self.tail + payload)[-FINGERPRINT:],
            zlib.crc32(payload, self.crc),
        )


def empty_row(day: int) -> FileRow:
    return FileRow(day, 0, 0, 0, 0, b"", b"", 0)


#: takes complete lines read at an offset, with the count of lines before them; returns the
#: count after them
LinesSink = Callable[[bytes, int, int], int]


class LedgerFiles:
    def __init__(self, ledger_dir: Path) -> None:
        self.ledger_dir = ledger_dir
        #: the days with a ledger file, and the folder's mtime when they were listed
        self._listed: set[int] = set()
        self._listed_at = -1
        #: (day, file size) whose torn last line was named in this process
        self._warned_torn: set[tuple[int, int]] = set()

    def listing(self) -> set[int]:
        """The days that have a ledger file, listed again when the folder changed (or may
        have, within its timestamps' granularity)."""
        try:
            mtime = os.stat(self.ledger_dir).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return set()
        if mtime != self._listed_at or time.time_ns() - mtime < RELIST_NS:
            names = [n for n in os.listdir(self.ledger_dir) if n.endswith(".jsonl")]
            days = (file_date_of(Path(n)) for n in names)
            self._listed = {d.toordinal() for d in days if d is not None}
            self._listed_at = mtime
        return self._listed

    def stat(
        self, days: Iterable[date] | None, known: Collection[int]
    ) -> list[tuple[int, os.stat_result]]:
        """The files of `days` (all, if None) that exist, oldest first; one the index `known`
        that is gone raises IndexStale."""
        listed = self.listing()
        wanted = sorted(listed | set(known)) if days is None else [d.toordinal() for d in days]
        found = []
        for day in wanted:
            if day not in listed and day not in known:
                continue
            try:
                found.append((day, os.stat(self.path(day))))
            except (FileNotFoundError, NotADirectoryError):
                if day in known:
                    raise IndexStale(f"{self.name(day)} was removed behind its back") from None
        return sorted(found, key=lambda item: item[0])

    def path(self, day: int) -> str:
        return ledger_path(self.ledger_dir, date.fromordinal(day))

    @staticmethod
    def name(day: int) -> str:
        return f"{date.fromordinal(day).isoformat()}.jsonl"

    def has_new_bytes(self, row: FileRow | None, st: os.stat_result) -> bool:
        """Whether a file has bytes to index; raises IndexStale if it is not the file the
        index read."""
        if row is None:
            return st.st_size > 0
        name = self.name(row.day)
        if st.st_ino != row.ino:
            raise IndexStale(f"{name} was replaced")
        if st.st_size < row.off:
            raise IndexStale(f"{name} shrank from {row.off} to {st.st_size} bytes")
        if st.st_size == row.off and st.st_mtime_ns == row.mtime:
            return False
        if not self._same_prefix(row, full=st.st_size == row.off):
            raise IndexStale(f"{name} was changed where it had been read")
        return True

    def _same_prefix(self, row: FileRow, *, full: bool) -> bool:
        """The indexed bytes are still there: their ends always, all of them (CRC) when the
        file changed without growing (an edit in place)."""
        try:
            with open(self.path(row.day), "rb") as f:
                if f.read(len(row.head)) != row.head:
                    return False
                f.seek(row.off - len(row.tail))
                if f.read(len(row.tail)) != row.tail:
                    return False
                if not full:
                    return True
                f.seek(0)
                crc, left = 0, row.off
                while left:
                    chunk = f.read(min(left, READ_CHUNK))
                    if not chunk:
                        return False
                    crc, left = zlib.crc32(chunk, crc), left - len(chunk)
                return crc == row.crc
        except OSError:
            return False

    def read_new(
        self, day: int, row: FileRow | None, st: os.stat_result, sink: LinesSink
    ) -> FileRow:
        """Hand the complete lines after `row.off` to `sink`; the file's row after them."""
        row = row or empty_row(day)
        name = self.name(day)
        try:
            f = open(self.path(day), "rb")  # noqa: SIM115 (closed below; missing is told apart)
        except (FileNotFoundError, NotADirectoryError):
            raise IndexStale(f"{name} was removed while being read") from None
        with f:
            if os.fstat(f.fileno()).st_ino != st.st_ino:
                raise IndexStale(f"{name} was replaced while being read")
            f.seek(row.off)
            pending = b""
            while chunk := f.read(READ_CHUNK):
                data = pending + chunk
                end = data.rfind(b"\n") + 1
                complete, pending = data[:end], data[end:]
                if complete:
                    lines = sink(complete, row.off, row.lines)
                    row = row.grown_by(complete, st.st_ino, 0, lines - row.lines)
            mtime = os.fstat(f.fileno()).st_mtime_ns
        if pending and (day, row.off + len(pending)) not in self._warned_torn:
            self._warned_torn.add((day, row.off + len(pending)))
            log.warning(
                "%s line %d (byte %d): ignoring an incomplete last line of %d bytes "
                "(a write in progress, or cut short)",
                name,
                row.lines + 1,
                row.off,
                len(pending),
            )
        # a torn tail is looked at again each time (mtime 0); an unchanged size with a new
        # mtime was checked by CRC, so the new mtime is remembered
        return row.grown_by(b"", st.st_ino, 0 if pending else mtime, 0)

    def read_back(self, places: Sequence[Place]) -> list[Version]:
        """The versions the index points at, read again from their ledger lines."""
        found: list[Version] = []
        for day in sorted({p.day for p in places}):
            offsets = sorted(p.off for p in places if p.day == day)
            try:
                with open(self.path(day), "rb") as f:
                    for off in offsets:
                        f.seek(off)
                        raw = f.readline()
                        parsed = parse_line(raw.rstrip(b"\n"))
                        if not isinstance(parsed, UsageLine) or not raw.endswith(b"\n"):
                            raise ValueError("not a usage line")
                        found.append(version_of(parsed, day, off))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise IndexStale(f"{self.name(day)} no longer holds the lines it indexed") from exc
        return found
