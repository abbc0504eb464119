"""The index's database: its SQLite connection (one per thread), its schema, and its recovery:
a corrupt file recreated, a stale index rebuilt from the ledger (`ledger_index` keeps it current
and answers from it)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from dx_lsp_telemetry.ledger import index_files, index_rows
from dx_lsp_telemetry.ledger.index_files import FileRow, IndexStale, LedgerFiles
from dx_lsp_telemetry.ledger.ledger import (
    LedgerError,
)
from dx_lsp_telemetry.record.summary import ToolDay

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = "2"
SLOT_SECONDS = index_rows.SLOT_SECONDS
#: SQLite's page cache per connection, and while a rebuild writes every page
CACHE_KIB = 2048
REBUILD_CACHE_KIB = 32768
#: how long a writer waits for another process's index transaction (a rebuild can be long)
BUSY_TIMEOUT_MS = 120_000
#: how often a connection checks that its database file is still the one in the folder
RECHECK_SECONDS = 0.5
#: less free space than this makes a failed write "no space left"
FULL_BELOW = 16 << 20
#: versions parsed before they are taken into the index (memory stays flat)
APPLY_BATCH = 4000

_SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    + index_files.SCHEMA
    + index_rows.SCHEMA
)
_TABLES = ("meta", "files", "events", "sums", "markers", "changes")
#: days' answers remembered per connection (a status reads the same days every second)
MEMO_DAYS = 64


class IndexNeedsRepair(LedgerError):
    """An index that may not repair itself (`repair=False`) found it has to."""


class IndexDb:
    """The connection and its recovery; `LedgerIndex` adds keeping up with the ledger and
    answering from it (`_refresh`, `_index_file`, which a rebuild uses)."""

    def __init__(self, ledger_dir: Path, *, repair: bool = True) -> None:
        self.ledger_dir = ledger_dir
        self._repair = repair
        self.index_dir = ledger_dir.parent / "index"
        self.db_path = self.index_dir / "ledger.sqlite"
        self._lock = FileLock(self.index_dir / "rebuild.lock", mode=0o600)
        self._db: sqlite3.Connection | None = None
        #: the inode of the database file the connection has open (a recreated one differs),
        #: and when that was last checked
        self._ino = 0
        self._checked_at = -RECHECK_SECONDS
        self._ledger = LedgerFiles(ledger_dir)
        #: the files table, as of `_data_version`
        self._files: dict[int, FileRow] = {}
        self._data_version: int | None = None
        #: days read, by their slots: (their version, the answer); shared, never changed
        self._memo: dict[tuple[int, int], tuple[object, IndexedDay]] = {}

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
                problem = _unless_corrupt(exc, self.index_dir)
                recover = self._recreate
            except IndexStale as exc:
                problem = exc
                recover = self._rebuild_if_stale
            if not self._repair:
                raise IndexNeedsRepair(str(problem)) from problem
            try:
                recover(str(problem))
            except sqlite3.DatabaseError as exc:
                problem = _unless_corrupt(exc, self.index_dir)
            except IndexStale as exc:
                problem = exc
        raise LedgerError(f"the ledger index cannot be rebuilt: {problem}")

    def _conn(self) -> sqlite3.Connection:
        if self._db is not None:
            now = time.monotonic()
            if now < self._checked_at + RECHECK_SECONDS:
                return self._db
            try:
                same = os.stat(self.db_path).st_ino == self._ino
            except OSError:
                same = False
            if same:
                self._checked_at = now
                return self._db
            # another process recreated the file; what this one wrote to the old file since
            # it looked is lost to the index only (it reads the ledger again)
            self.close()
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
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if _schema_version(db) != SCHEMA_VERSION:
                if not self._repair:
                    raise IndexNeedsRepair("the index is new, or of another version")
                with self._rebuild_lock():
                    if _schema_version(db) != SCHEMA_VERSION:
                        self._rebuild(db, "a new index (or one of another version)")
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
        first = not self._files and _schema_version(db) is None
        log.log(logging.INFO if first else logging.WARNING, "indexing the ledger: %s", why)
        self._files, self._data_version = {}, None
        db.execute("BEGIN IMMEDIATE")
        try:
            for table in _TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            # a new index's change counts start again: what readers remember is of the old one
            db.execute("INSERT INTO meta VALUES ('generation', ?)", (os.urandom(8).hex(),))
            db.execute(f"PRAGMA cache_size=-{REBUILD_CACHE_KIB}")
            for day, st in self._ledger.stat(None, ()):
                self._index_file(db, day, st)
            db.execute(index_rows.INDEXES)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        finally:
            with suppress(sqlite3.Error):
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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

    def _refresh(self, db: sqlite3.Connection, days: list[date] | None) -> None:  # ledger_index
        raise NotImplementedError

    def _index_file(self, db: sqlite3.Connection, day: int, st: os.stat_result) -> None:
        raise NotImplementedError  # ledger_index


@dataclass(frozen=True)
class IndexedDay:
    """Remembered and handed out again: read it, never change it."""

    tools: dict[str, ToolDay]
    has_markers: bool
    #: how far each of the day's UTC files was indexed when `tools` was read
    cover: dict[date, int]


def _unless_corrupt(exc: sqlite3.DatabaseError, where: Path) -> sqlite3.DatabaseError:
    """A corrupt database file is for recovery; any other failure (locked for too long, a
    full disk) is the caller's: raised as a LedgerError naming it."""
    text = str(exc).lower()
    if not isinstance(exc, sqlite3.OperationalError) and (
        "not a database" in text or "malformed" in text or "corrupt" in text
    ):
        return exc
    raise LedgerError(f"the ledger index cannot be used: {exc}{_why(text, where)}") from exc


def _why(text: str, where: Path) -> str:
    """SQLite says "disk I/O error" for a write the OS refused: say which refusal it was."""
    if "disk i/o" not in text and "full" not in text:
        return ""
    try:
        free = os.statvfs(where).f_bavail * os.statvfs(where).f_frsize
    except (OSError, AttributeError):  # no statvfs on Windows
        free = None
    if free is not None and free < FULL_BELOW:
        return f" (no space left on the disk of {where}: {free} bytes free)"
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return ""
    if limit != resource.RLIM_INFINITY:
        return f" (file too large: this process may write files of at most {limit} bytes)"
    return ""


def _schema_version(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return str(row[0]) if row else None
