"""The ledger's index: a SQLite file beside the ledger, shared by every sidecar and the CLI.

The JSONL ledger stays the truth; this is derived from it and can always be rebuilt from it.
It holds where each event_id's winning version sits (the larger token total; on a tie the one
recorded later), the sums of the winners per quarter hour, tool and model, the session
markers, and how far each ledger file has been read. So a day's totals cost a few rows
whatever the history, and only bytes beyond what is indexed are ever parsed.

Every reader checks, cheaply, that each ledger file is still the one indexed (inode, size,
the bytes around the indexed end, a CRC when a file changed without growing); a file that
was replaced, truncated, edited or removed behind the index's back, a schema from another
version or a corrupt database file means a rebuild from the ledger, never trust.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from hashlib import blake2b
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.events import UsageEvent
from dx_lsp_telemetry.ledger import (
    Appended,
    LedgerError,
    SessionLine,
    UsageLine,
    complete_lines,
    file_date_of,
    ledger_path,
    parse_line,
)
from dx_lsp_telemetry.summary import ToolDay, Totals

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = "1"
#: the sums' granularity: every zone in use since 1979 starts its days on a quarter hour
SLOT_SECONDS = 900
#: a ledger file is read (and indexed) this much at a time: memory stays flat for any size
READ_CHUNK = 4 << 20
#: ids looked up per query (SQLite allows 32766 variables; fewer keep statements small)
LOOKUP_BATCH = 500
#: how long a writer waits for another process's index transaction (a rebuild can be long)
BUSY_TIMEOUT_MS = 120_000
#: a folder changed this recently is listed again: its mtime may not show a change yet
RELIST_NS = 1_000_000_000
#: bytes kept from the start and from the indexed end of each file, to know it again
FINGERPRINT = 64

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files(
    day INTEGER PRIMARY KEY, off INTEGER NOT NULL, lines INTEGER NOT NULL,
    ino INTEGER NOT NULL, mtime INTEGER NOT NULL, head BLOB NOT NULL, tail BLOB NOT NULL,
    crc INTEGER NOT NULL);
CREATE TABLE events(
    id BLOB PRIMARY KEY, total INTEGER NOT NULL, rec INTEGER NOT NULL,
    day INTEGER NOT NULL, off INTEGER NOT NULL, slot INTEGER NOT NULL,
    spread INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX events_at ON events(day, off, slot);
CREATE TABLE sums(
    slot INTEGER NOT NULL, tool TEXT NOT NULL, model TEXT NOT NULL,
    events INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,
    cwrite INTEGER NOT NULL, cread INTEGER NOT NULL, spend TEXT NOT NULL,
    metrics TEXT NOT NULL, PRIMARY KEY(slot, tool, model)) WITHOUT ROWID;
CREATE TABLE markers(
    slot INTEGER NOT NULL, day INTEGER NOT NULL, PRIMARY KEY(slot, day)) WITHOUT ROWID;
"""
_TABLES = ("meta", "files", "events", "sums", "markers")


class IndexStale(Exception):
    """The ledger changed behind the index: rebuild."""


@dataclass(frozen=True)
class FileRow:
    day: int
    off: int
    lines: int
    ino: int
    mtime: int
    head: bytes
    tail: bytes
    crc: int


@dataclass(frozen=True)
class Winner:
    total: int
    rec: int
    day: int
    off: int
    #: versions of this event were seen in more than one ledger file
    spread: int = 0

    def beaten_by(self, other: Winner) -> bool:
        return other.total > self.total or (
            other.total == self.total
            and (other.rec, other.day, other.off) > (self.rec, self.day, self.off)
        )


@dataclass(frozen=True)
class _Version:
    """One usage line as the index sees it."""

    key: bytes
    at: Winner
    slot: int
    event: UsageEvent


def event_key(event_id: str) -> bytes:
    return blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _micros(recorded_at: str) -> int:
    """recorded_at as a number, so ties order by time (the text with and without a fraction
    does not sort); an unreadable stamp sorts first, as an empty one always did."""
    if not recorded_at:
        return 0
    try:
        ts = parse_ts(recorded_at)
    except ValueError:
        return 0
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def slot_of(ts: datetime) -> int:
    return int(ts.timestamp()) // SLOT_SECONDS


class LedgerIndex:
    """The index of `ledger_dir`, in `<data folder>/index/`. One per thread (SQLite's rule);
    opened at first use, so it belongs to the thread that uses it."""

    def __init__(self, ledger_dir: Path) -> None:
        self.ledger_dir = ledger_dir
        self.index_dir = ledger_dir.parent / "index"
        self.db_path = self.index_dir / "ledger.sqlite"
        self._lock = FileLock(self.index_dir / "rebuild.lock", mode=0o600)
        self._db: sqlite3.Connection | None = None
        #: the inode of the database file the connection has open (a recreated one differs)
        self._ino = 0
        self._files: dict[int, FileRow] = {}
        self._data_version: int | None = None
        #: the days with a ledger file, and the folder's mtime when they were listed
        self._listed: set[int] = set()
        self._listed_at = -1
        #: (day, file size) whose torn last line was named in this process
        self._warned_torn: set[tuple[int, int]] = set()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- every operation: with recovery ------------------------------------------------------

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """`op` on the connection; a corrupt database file is recreated, a stale index
        rebuilt from the ledger, and `op` tried again."""
        problem: Exception | None = None
        for _ in range(3):
            try:
                return op(self._conn())
            except sqlite3.DatabaseError as exc:
                problem = _unless_corrupt(exc)
                recover = self._recreate
            except IndexStale as exc:
                problem = exc
                recover = self._rebuild_if_stale
            try:
                recover(str(problem))
            except sqlite3.DatabaseError as exc:
                problem = _unless_corrupt(exc)
            except IndexStale as exc:
                problem = exc
        raise LedgerError(f"the ledger index cannot be rebuilt: {problem}")

    def _conn(self) -> sqlite3.Connection:
        if self._db is not None:
            try:
                same = os.stat(self.db_path).st_ino == self._ino
            except OSError:
                same = False
            if same:
                return self._db
            self.close()  # another process recreated the file
        self._db = self._open()
        self._data_version = None
        return self._db

    def _open(self) -> sqlite3.Connection:
        try:
            self.index_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # created owner-only (SQLite gives its -wal and -shm files the same mode), and only
            # if missing: closing any descriptor of an open database drops this process's
            # locks on it (POSIX), under the other connections' feet
            if not os.path.exists(self.db_path):
                with suppress(FileExistsError):
                    os.close(os.open(self.db_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            self._ino = os.stat(self.db_path).st_ino
        except OSError as exc:
            raise LedgerError(
                f"cannot create the index in {self.index_dir}: {exc.strerror}"
            ) from exc
        db = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # an index can be rebuilt: survive kill -9 (WAL), not necessarily a power cut
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-2048")
            if _schema_version(db) != SCHEMA_VERSION:
                with self._rebuild_lock():
                    if _schema_version(db) != SCHEMA_VERSION:
                        self._rebuild(db, "it is new, or from another version")
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _rebuild_lock(self) -> Iterator[None]:
        try:
            with self._lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
                yield
        except Timeout as exc:
            raise LedgerError(
                f"the ledger index is being rebuilt by another process ({exc})"
            ) from exc

    def _recreate(self, why: str) -> None:
        """Replace an unreadable database file with an empty one (rebuilt when opened)."""
        self.close()
        with self._rebuild_lock():
            try:
                unchanged = os.stat(self.db_path).st_ino == self._ino
            except OSError:
                unchanged = False
            if unchanged:  # not yet replaced by another process
                log.warning("the ledger index is unreadable (%s); building it anew", why)
                for suffix in ("", "-wal", "-shm"):
                    with suppress(FileNotFoundError):
                        os.remove(f"{self.db_path}{suffix}")
        self._files, self._data_version = {}, None

    def _rebuild_if_stale(self, why: str) -> None:
        """Rebuild, unless another process did while we waited for the rebuild lock."""
        with self._rebuild_lock():
            db = self._conn()
            try:
                self._refresh(db, None)
            except IndexStale:
                self._rebuild(db, why)

    def rebuild(self, why: str) -> None:
        """Read the whole ledger again now."""

        def rebuild(db: sqlite3.Connection) -> None:
            with self._rebuild_lock():
                self._rebuild(db, why)

        self._run(rebuild)

    def _rebuild(self, db: sqlite3.Connection, why: str) -> None:
        """Forget everything and read the whole ledger again, in one transaction: readers
        see the old index until the new one is complete."""
        log.warning("building the ledger index from the ledger: %s", why)
        self._files, self._data_version = {}, None
        db.execute("BEGIN IMMEDIATE")
        try:
            for table in _TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            for day, st in self._ledger_files():
                self._index_file(db, day, st)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        with suppress(sqlite3.DatabaseError):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _reload_files(self, db: sqlite3.Connection) -> None:
        """The files table, when another connection changed the database since we looked."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        self._files = {row[0]: FileRow(*row) for row in db.execute("SELECT * FROM files")}
        self._data_version = version

    def _rollback(self, db: sqlite3.Connection) -> None:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        self._data_version = None  # the cached rows may hold what was rolled back

    # -- keeping up with the ledger ----------------------------------------------------------

    def refresh(self, days: Iterable[date] | None = None) -> None:
        """Index what was appended to the ledger (to `days`' files only, if given) since the
        index last looked; rebuild it if the ledger changed in any other way."""
        wanted = None if days is None else list(days)
        self._run(lambda db: self._refresh(db, wanted))

    def _refresh(self, db: sqlite3.Connection, days: list[date] | None) -> None:
        self._reload_files(db)
        on_disk = self._ledger_files() if days is None else self._stat(days)
        if days is None:
            gone = set(self._files) - {d for d, _ in on_disk}
            if gone:
                missing = ", ".join(sorted(date.fromordinal(d).isoformat() for d in gone))
                raise IndexStale(f"ledger files were removed behind its back ({missing})")
        grown = [(d, st) for d, st in on_disk if self._changed(d, st)]
        if not grown:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            self._reload_files(db)  # another process may have indexed some of it meanwhile
            for day, st in grown:
                self._index_file(db, day, st)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise

    def _ledger_files(self) -> list[tuple[int, os.stat_result]]:
        return self._stat(date.fromordinal(d) for d in self._listing())

    def _listing(self) -> set[int]:
        """The days that have a ledger file, listed again when the folder changed (or may
        have within its timestamps' granularity)."""
        try:
            mtime = os.stat(self.ledger_dir).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return set()
        if mtime != self._listed_at or time.time_ns() - mtime < RELIST_NS:
            days = (
                file_date_of(Path(n)) for n in os.listdir(self.ledger_dir) if n.endswith(".jsonl")
            )
            self._listed = {d.toordinal() for d in days if d is not None}
            self._listed_at = mtime
        return self._listed

    def _stat(self, days: Iterable[date]) -> list[tuple[int, os.stat_result]]:
        found = []
        listed = self._listing()
        for d in days:
            day = d.toordinal()
            if day not in listed and day not in self._files:
                continue
            try:
                found.append((day, os.stat(ledger_path(self.ledger_dir, d))))
            except (FileNotFoundError, NotADirectoryError):
                if day in self._files:
                    raise IndexStale(f"{d}.jsonl was removed behind its back") from None
        return sorted(found, key=lambda item: item[0])

    def _changed(self, day: int, st: os.stat_result) -> bool:
        """Whether `day`'s file has bytes to index; raises IndexStale if it is not the file
        the index read."""
        row = self._files.get(day)
        if row is None:
            return st.st_size > 0
        name = f"{date.fromordinal(day)}.jsonl"
        if st.st_ino != row.ino:
            raise IndexStale(f"{name} was replaced")
        if st.st_size < row.off:
            raise IndexStale(f"{name} shrank from {row.off} to {st.st_size} bytes")
        if st.st_size == row.off and st.st_mtime_ns == row.mtime:
            return False
        path = ledger_path(self.ledger_dir, date.fromordinal(day))
        if not self._same_prefix(path, row, full=st.st_size == row.off):
            raise IndexStale(f"{name} was changed where it had been read")
        return st.st_size > row.off or st.st_mtime_ns != row.mtime

    @staticmethod
    def _same_prefix(path: str, row: FileRow, *, full: bool) -> bool:
        """The indexed bytes are still there: their ends always, all of them (CRC) when the
        file changed without growing (an edit in place)."""
        try:
            with open(path, "rb") as f:
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

    def _index_file(self, db: sqlite3.Connection, day: int, st: os.stat_result) -> None:
        row = self._files.get(day)
        off = row.off if row else 0
        lines = row.lines if row else 0
        crc = row.crc if row else 0
        head = row.head if row else b""
        tail = row.tail if row else b""
        path = ledger_path(self.ledger_dir, date.fromordinal(day))
        name = os.path.basename(path)
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below; a missing file is told apart)
        except (FileNotFoundError, NotADirectoryError):
            raise IndexStale(f"{name} was removed while being read") from None
        with f:
            if os.fstat(f.fileno()).st_ino != st.st_ino:
                raise IndexStale(f"{name} was replaced while being read")
            f.seek(off)
            pending = b""
            while True:
                chunk = f.read(READ_CHUNK)
                if not chunk:
                    break
                data = pending + chunk
                end = data.rfind(b"\n") + 1
                if end == 0:
                    pending = data
                    continue
                complete, pending = data[:end], data[end:]
                base = off
                lines = self._index_bytes(db, day, name, complete, base, lines)
                if len(head) < FINGERPRINT:
                    head = (head + complete)[:FINGERPRINT]
                tail = (tail + complete)[-FINGERPRINT:]
                crc = zlib.crc32(complete, crc)
                off += len(complete)
            mtime = os.fstat(f.fileno()).st_mtime_ns
        if pending and (day, off + len(pending)) not in self._warned_torn:
            self._warned_torn.add((day, off + len(pending)))
            log.warning(
                "%s line %d (byte %d): ignoring an incomplete last line of %d bytes "
                "(a write in progress, or cut short)",
                name,
                lines + 1,
                off,
                len(pending),
            )
        # a torn tail is looked at again each time (mtime 0); an unchanged size with a new
        # mtime was checked by CRC, so the new mtime is remembered
        self._store_file(
            db, FileRow(day, off, lines, st.st_ino, 0 if pending else mtime, head, tail, crc)
        )

    def _store_file(self, db: sqlite3.Connection, row: FileRow) -> None:
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)",
            (row.day, row.off, row.lines, row.ino, row.mtime, row.head, row.tail, row.crc),
        )
        self._files[row.day] = row

    def _index_bytes(
        self, db: sqlite3.Connection, day: int, name: str, data: bytes, base: int, lines: int
    ) -> int:
        """Parse complete lines read at `base`; returns the line count after them."""
        versions: list[_Version] = []
        markers: list[tuple[int, int]] = []
        for offset, raw in complete_lines(data, base):
            lines += 1
            if not raw.strip():
                continue
            try:
                parsed = parse_line(raw)
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                log.warning(
                    "%s line %d (byte %d): skipped a malformed ledger line (%s)",
                    name,
                    lines,
                    offset,
                    str(exc)[:200],
                )
                continue
            if isinstance(parsed, SessionLine):
                markers.append((slot_of(parsed.timestamp), day))
            else:
                versions.append(_version(parsed, day, offset))
            if len(versions) >= LOOKUP_BATCH * 8:
                self._apply(db, versions)
                versions = []
        if versions:
            self._apply(db, versions)
        if markers:
            db.executemany("INSERT OR IGNORE INTO markers VALUES (?,?)", markers)
        return lines

    # -- taking in versions -----------------------------------------------------------------

    def _apply(self, db: sqlite3.Connection, versions: list[_Version]) -> None:
        """Make the winners of `versions` and of the index the index's winners, with sums."""
        best: dict[bytes, _Version] = {}
        for v in versions:
            held = best.get(v.key)
            if held is None or held.at.beaten_by(v.at):
                best[v.key] = v
        current = self._winners(db, list(best))
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        spread: list[tuple[bytes]] = []
        replaced: list[Winner] = []
        deltas: dict[tuple[int, str, str], Totals] = {}
        for key, v in best.items():
            old = current.get(key)
            if old is None:
                inserts.append((key, v.at.total, v.at.rec, v.at.day, v.at.off, v.slot, 0))
            elif old.beaten_by(v.at):
                replaced.append(old)
                moved = int(old.spread or old.day != v.at.day)
                updates.append((v.at.total, v.at.rec, v.at.day, v.at.off, v.slot, moved, key))
            else:
                if old.day != v.at.day and not old.spread:
                    spread.append((key,))
                continue
            _delta(deltas, v).add(v.event)
        for gone in self._read_versions(replaced):
            _delta(deltas, gone).add(gone.event, -1)
        if inserts:
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", inserts)
        if updates:
            db.executemany(
                "UPDATE events SET total=?, rec=?, day=?, off=?, slot=?, spread=? WHERE id=?",
                updates,
            )
        if spread:
            # a version in another file: if the winner's file is pruned, that one would win
            db.executemany("UPDATE events SET spread=1 WHERE id=?", spread)
        self._add_sums(db, deltas)

    @staticmethod
    def _winners(db: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, Winner]:
        found: dict[bytes, Winner] = {}
        for i in range(0, len(keys), LOOKUP_BATCH):
            chunk = keys[i : i + LOOKUP_BATCH]
            marks = ",".join("?" * len(chunk))
            for key, total, rec, day, off, spread in db.execute(
                f"SELECT id, total, rec, day, off, spread FROM events WHERE id IN ({marks})",
                chunk,
            ):
                found[key] = Winner(total, rec, day, off, spread)
        return found

    def _read_versions(self, places: Sequence[Winner]) -> list[_Version]:
        """The versions the index points at, read back from their ledger lines."""
        found: list[_Version] = []
        for day in sorted({p.day for p in places}):
            path = ledger_path(self.ledger_dir, date.fromordinal(day))
            offsets = sorted(p.off for p in places if p.day == day)
            try:
                with open(path, "rb") as f:
                    for off in offsets:
                        f.seek(off)
                        raw = f.readline()
                        parsed = parse_line(raw.rstrip(b"\n"))
                        if not isinstance(parsed, UsageLine) or not raw.endswith(b"\n"):
                            raise ValueError("not a usage line")
                        found.append(_version(parsed, day, off))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                name = os.path.basename(path)
                raise IndexStale(f"{name} no longer holds the lines it indexed") from exc
        return found

    @staticmethod
    def _add_sums(db: sqlite3.Connection, deltas: dict[tuple[int, str, str], Totals]) -> None:
        for (slot, tool, model), delta in deltas.items():
            row = db.execute(
                "SELECT events, input, output, cwrite, cread, spend, metrics FROM sums "
                "WHERE slot=? AND tool=? AND model=?",
                (slot, tool, model),
            ).fetchone()
            totals = _totals_of(row) if row else Totals()
            totals.merge(delta)
            if totals.events <= 0:
                db.execute(
                    "DELETE FROM sums WHERE slot=? AND tool=? AND model=?", (slot, tool, model)
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO sums VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (slot, tool, model, *_columns_of(totals)),
                )

    def add_appended(self, appended: Sequence[Appended]) -> None:
        """Index lines this process just wrote (under the ledger lock), without reading them
        back, where the index had read their file up to where they begin; the rest is read."""
        self._run(lambda db: self._add_appended(db, appended))

    def _add_appended(self, db: sqlite3.Connection, appended: Sequence[Appended]) -> None:
        rest = []
        db.execute("BEGIN IMMEDIATE")
        try:
            self._reload_files(db)
            for a in appended:
                row = self._files.get(a.file_date.toordinal())
                if a.sealed or (row.off if row else 0) != a.start:
                    rest.append(a.file_date)
                else:
                    self._take_appended(db, a, row)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        if rest:
            self._refresh(db, rest)

    def _take_appended(self, db: sqlite3.Connection, a: Appended, row: FileRow | None) -> None:
        day = a.file_date.toordinal()
        rec = _micros(a.stamp)
        versions = [
            _Version(
                event_key(e.event_id), Winner(e.token_total, rec, day, off), slot_of(e.timestamp), e
            )
            for e, off in a.lines
        ]
        self._apply(db, versions)
        st = os.stat(ledger_path(self.ledger_dir, a.file_date))
        end = a.start + len(a.payload)
        head = row.head if row else b""
        if len(head) < FINGERPRINT:
            head = (head + a.payload)[:FINGERPRINT]
        self._store_file(
            db,
            FileRow(
                day,
                end,
                (row.lines if row else 0) + len(a.lines),
                st.st_ino,
                # grown beyond our lines already: the next refresh reads on from `end`
                st.st_mtime_ns if st.st_size == end else 0,
                head,
                ((row.tail if row else b"") + a.payload)[-FINGERPRINT:],
                zlib.crc32(a.payload, row.crc if row else 0),
            ),
        )

    # -- questions ---------------------------------------------------------------------------

    def contains(self, event_ids: Iterable[str]) -> set[str]:
        """Which of `event_ids` are in the index."""
        by_key = {event_key(i): i for i in event_ids}
        return self._run(lambda db: {by_key[k] for k in self._winners(db, list(by_key))})

    def day(self, first_slot: int, end_slot: int, files: Iterable[date]) -> IndexedDay:
        """What the index holds of the slots [first_slot, end_slot), and how far it has read
        `files` (a zone day's UTC files): one snapshot, so a record and its cover agree."""
        wanted = sorted(files)

        def read(db: sqlite3.Connection) -> IndexedDay:
            db.execute("BEGIN")
            try:
                rows = db.execute(
                    "SELECT tool, model, events, input, output, cwrite, cread, spend, metrics "
                    "FROM sums WHERE slot >= ? AND slot < ?",
                    (first_slot, end_slot),
                ).fetchall()
                markers = db.execute(
                    "SELECT 1 FROM markers WHERE slot >= ? AND slot < ? LIMIT 1",
                    (first_slot, end_slot),
                ).fetchone()
                offsets = dict(
                    db.execute(
                        f"SELECT day, off FROM files WHERE day IN ({','.join('?' * len(wanted))})",
                        [d.toordinal() for d in wanted],
                    ).fetchall()
                )
            finally:
                db.execute("COMMIT")
            tools: dict[str, ToolDay] = {}
            for tool, model, *columns in rows:
                sums = tools.setdefault(tool, ToolDay())
                totals = _totals_of(columns)
                sums.totals.merge(totals)
                if model:
                    sums.by_model.setdefault(model, Totals()).merge(totals)
            cover = {d: offsets.get(d.toordinal(), 0) for d in wanted}
            return IndexedDay(tools, markers is not None, cover)

        return self._run(read)

    def late(self, first_slot: int, end_slot: int, cover: dict[date, int]) -> dict[str, Totals]:
        """Per tool, the winners in [first_slot, end_slot) at or after `cover` (file date ->
        offset) in their file: a pushed day's events that came after its push."""

        def read(db: sqlite3.Connection) -> dict[str, Totals]:
            rows: list[tuple[int, int]] = []
            for file_date, offset in sorted(cover.items()):
                rows += db.execute(
                    "SELECT day, off FROM events WHERE day = ? AND off >= ? AND slot >= ? "
                    "AND slot < ?",
                    (file_date.toordinal(), offset, first_slot, end_slot),
                ).fetchall()
            result: dict[str, Totals] = {}
            for v in self._read_versions([Winner(0, 0, day, off) for day, off in rows]):
                result.setdefault(v.event.tool, Totals()).add(v.event)
            return result

        return self._run(read)

    # -- pruning -----------------------------------------------------------------------------

    def forget_file(self, file_date: date) -> bool:
        """Take a ledger file that is about to be deleted out of the index (call it under the
        ledger lock). True if the index must be rebuilt once the file is gone: a version of
        one of its winners in another file wins then (rare: an event moved across dates)."""
        return self._run(lambda db: self._forget_file(db, file_date))

    def _forget_file(self, db: sqlite3.Connection, file_date: date) -> bool:
        day = file_date.toordinal()
        self._refresh(db, [file_date])
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                "SELECT total, rec, day, off, spread FROM events WHERE day = ?", (day,)
            ).fetchall()
            deltas: dict[tuple[int, str, str], Totals] = {}
            for v in self._read_versions([Winner(*row) for row in rows]):
                _delta(deltas, v).add(v.event, -1)
            self._add_sums(db, deltas)
            for table in ("events", "markers", "files"):
                db.execute(f"DELETE FROM {table} WHERE day = ?", (day,))
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        self._files.pop(day, None)
        return any(row[4] for row in rows)


@dataclass(frozen=True)
class IndexedDay:
    tools: dict[str, ToolDay]
    has_markers: bool
    #: how far each of the day's UTC files was indexed when `tools` was read
    cover: dict[date, int]


def _version(line: UsageLine, day: int, offset: int) -> _Version:
    e = line.event
    return _Version(
        event_key(e.event_id),
        Winner(e.token_total, _micros(line.recorded_at), day, offset),
        slot_of(e.timestamp),
        e,
    )


def _delta(deltas: dict[tuple[int, str, str], Totals], v: _Version) -> Totals:
    key = (v.slot, v.event.tool, v.event.model or "")
    found = deltas.get(key)
    if found is None:
        found = deltas[key] = Totals()
    return found


def _columns_of(t: Totals) -> tuple[Any, ...]:
    metrics = (
        json.dumps({k: [t.metric_events[k], str(v)] for k, v in sorted(t.metrics.items())})
        if t.metrics
        else ""
    )
    return (
        t.events,
        t.input_tokens,
        t.output_tokens,
        t.cache_write_tokens,
        t.cache_read_tokens,
        str(t.spend_cents),
        metrics,
    )


def _totals_of(columns: Sequence[Any]) -> Totals:
    events, i, o, w, r, spend, metrics = columns
    t = Totals(events, i, o, w, r, Decimal(spend))
    if metrics:
        for key, (count, value) in json.loads(metrics).items():
            t.metrics[key] = Decimal(value)
            t.metric_events[key] = count
    return t


def _unless_corrupt(exc: sqlite3.DatabaseError) -> sqlite3.DatabaseError:
    """A corrupt database file is for recovery; any other failure (locked for too long, a
    full disk) is the caller's: raised as a LedgerError naming it."""
    text = str(exc).lower()
    if not isinstance(exc, sqlite3.OperationalError) and (
        "not a database" in text or "malformed" in text or "corrupt" in text
    ):
        return exc
    raise LedgerError(f"the ledger index cannot be used: {exc}") from exc


def _schema_version(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return str(row[0]) if row else None
