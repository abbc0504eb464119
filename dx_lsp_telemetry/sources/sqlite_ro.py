"""Reading another program's SQLite database strictly read-only, while it writes.

Opened as `file:…?mode=ro` with `query_only` on: nothing is ever written, not even a journal.
The database is live (Goose, Zed), usually in WAL mode, where a commit touches only the `-wal`
file: its signature is that of both files. A database that is locked or being written is
`Busy` (read again shortly); one that is not a database, or not the expected one, is `Broken`
with SQLite's own words.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: how long one read waits for a writer's lock before it gives up (and retries later)
BUSY_TIMEOUT_SECONDS = 0.5
#: a file changed this recently may change again within its mtime's granularity with the same
#: size: its signature is not trusted to skip the next read
RACY_NS = 2_000_000_000
#: the companion files whose changes are changes of the database
COMPANIONS = ("-wal", "-journal")


class Busy(Exception):
    """Locked by a writer, or changed in the middle of the read."""


class Broken(Exception):
    """Not a readable database of the expected shape."""


@contextmanager
def open_ro(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise FileNotFoundError(path)
    uri = path.absolute().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise _classify(exc) from exc
    try:
        db.execute("PRAGMA query_only = ON")
        yield db
    except sqlite3.DatabaseError as exc:
        raise _classify(exc) from exc
    finally:
        db.close()


def _classify(exc: sqlite3.DatabaseError) -> Exception:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return Busy(text)
    return Broken(text)


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    """The table's column names (empty: no such table)."""
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def signature(path: Path) -> list[int | None]:
    """(inode, size, mtime) of the database and of its companions: unchanged means no commit."""
    parts: list[int | None] = []
    for name in (path.name, *(path.name + c for c in COMPANIONS)):
        try:
            st = os.stat(path.with_name(name))
        except OSError:
            parts += [None, None, None]
            continue
        parts += [st.st_ino, st.st_size, st.st_mtime_ns]
    return parts


def trusted(sig: list[int | None]) -> list[int | None] | None:
    """The signature to keep, or None if a file changed too recently to trust it."""
    now = time.time_ns()
    mtimes = [m for m in sig[2::3] if m is not None]
    if any(now - m < RACY_NS for m in mtimes):
        return None
    return sig


def is_companion(path: Path, db_name: str) -> bool:
    return path.name in {db_name + c for c in COMPANIONS}
