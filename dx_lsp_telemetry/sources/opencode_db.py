"""Reading the `step-finish` parts of an OpenCode-schema SQLite database, read-only, once each.

OpenCode (and the rebuilt Kilo Code, which shares its schema) keeps a session's messages in
`message(id, session_id, time_created, time_updated, data)` and their parts in
`part(id, message_id, session_id, time_created, time_updated, data)`, `data` being the JSON of
the part without its ids (the tables of OpenCode's first SQLite migration,
`20260127222353_familiar_lady_ursula`, unchanged since). Every step of an assistant message ends
with a part `{"type": "step-finish", "cost": <USD>, "tokens": {"input", "output", "reasoning",
"cache": {"read", "write"}}}`: that step's usage. The message's own `tokens` are overwritten at
every step while its `cost` accumulates, so only the parts are summed. `input` excludes the
cache already; `output` excludes `reasoning`, which DX counts as output.

One record per part, keyed by the part's own id: a database copied elsewhere, or a session in
two databases, counts once. A fork copies a session's messages and parts, step-finish parts
included, under new ids into a new session (Kilo zeroes the copies' cost, not their tokens): a
part whose message is older than its session is such a copy, and skipped.

The database is opened read-only (`mode=ro`), each page of rows read in one short transaction:
a consistent snapshot of a database being written in WAL mode, and no lock held between pages.
`part` is a rowid table and SQLite gives a new row the largest rowid plus one, in commit order,
so the checkpoint is the largest rowid read: only rows above it are ever read. A rowid is
reused only once the row holding the largest one is deleted (a session removed): then the
checkpoint's row no longer holds the part it held, and reading resumes after the newest
remembered part that is still in place, skipping those already counted.

A busy or locked database is read again later (named only when it stays so); a file that is no
database, or a database without OpenCode's tables and columns, is named once per change of the
file. Only counts, the model, the part id and its time are taken: never a part's text, a tool's
input or output, a path or a title.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.sources import counts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, SourceRecord

#: the columns read, per table (others may come and go with OpenCode's migrations)
REQUIRED = {
    "part": ("id", "message_id", "session_id", "time_created", "data"),
    "message": ("id", "data"),
    "session": ("id", "time_created"),
}
#: rows per transaction: each read is short, whatever the size of the history
PAGE = 2000
#: the last parts counted, as (rowid, digest of the part id): where to resume after a delete
TAIL = 256
#: busy reads in a row before the database is named as locked
BUSY_REPORT_AFTER = 5
BUSY_TIMEOUT_SECONDS = 0.2
#: a file changed this recently may change again within its mtime's granularity
RACY_NS = 2_000_000_000
#: the provider the Kilo Code importer gives the messages it copies from legacy or Roo tasks
IMPORTED_PROVIDER = "legacy"
#: a message this much older than its session was copied into it by a fork (a message is
#: written after its session; the margin absorbs a clock stepped back between the two)
FORK_SLACK_MS = 5_000


class SchemaProblem(Exception):
    """The database has no OpenCode tables of the expected shape."""


class _Changed(Exception):
    """The database file changed while it was read as immutable: read it again."""


@dataclass
class _Page:
    rows: list[tuple[Any, ...]]
    #: the largest rowid of `part` and the id it holds, when this page was the last
    end: tuple[int, str] | None


class DbReader:
    """Reads OpenCode-schema databases; remembers, per database, consecutive busy reads."""

    def __init__(self, *, skip_imports: bool = False) -> None:
        #: Kilo Code: parts of messages its importer copied are the legacy reader's to count
        self.skip_imports = skip_imports
        self._busy: dict[str, int] = {}

    def read(self, path: Path, state: FileState) -> ReadResult:
        st = os.stat(path)  # missing: the caller's FileNotFoundError (a deleted database)
        stamp = _stamp(path, st)
        if state.get("stamp") == stamp:
            return ReadResult([], state)
        fresh = state.get("identity") != [st.st_dev, st.st_ino]
        new_state: FileState = {
            "identity": [st.st_dev, st.st_ino],
            "stamp": None if time.time_ns() - max(stamp[2], stamp[4]) < RACY_NS else stamp,
            "rowid": 0 if fresh else int(state.get("rowid", 0)),
            "anchor": None if fresh else state.get("anchor"),
            "tail": [] if fresh else list(state.get("tail") or []),
        }
        key = str(path)
        try:
            records, bad = self._read(path, new_state, st)
        except _Changed:
            return ReadResult([], state, retry=True)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                busy = self._busy[key] = self._busy.get(key, 0) + 1
                problem = None
                if busy >= BUSY_REPORT_AFTER:
                    problem = f"locked by another process for {busy} reads in a row"
                return ReadResult([], state, retry=True, problem=problem)
            return self._refused(key, new_state, f"cannot be read ({exc})")
        except SchemaProblem as exc:
            return self._refused(key, new_state, str(exc))
        except sqlite3.DatabaseError as exc:
            return self._refused(key, new_state, f"not a readable SQLite database ({exc})")
        self._busy.pop(key, None)
        problem = None
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            problem = f"skipped {len(bad)} unreadable step-finish parts ({shown})"
        return ReadResult(records, new_state, problem=problem)

    def _refused(self, key: str, state: FileState, problem: str) -> ReadResult:
        """Nothing read; the new stamp is kept, so the problem is named once per change."""
        self._busy.pop(key, None)
        return ReadResult([], state, problem=problem)

    # -- the database --------------------------------------------------------------------

    def _read(
        self, path: Path, state: FileState, st: os.stat_result
    ) -> tuple[list[SourceRecord], list[str]]:
        uri = path.absolute().as_uri() + "?mode=ro"
        # no log beside it: no writer is running; read as a plain file, so that SQLite does not
        # leave a shared-memory file in the tool's folder, and make sure it did not change
        immutable = not os.path.exists(f"{path}-wal")
        if immutable:
            uri += "&immutable=1"
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA query_only = ON")
            _check_schema(db)
            tail: list[list[Any]] = state["tail"]
            after = self._resume_point(db, state)
            skip = {digest for _, digest in tail}
            records: list[SourceRecord] = []
            bad: list[str] = []
            while True:
                page = _page(db, after)
                for row in page.rows:
                    rowid, part_id = row[0], row[1]
                    after = rowid
                    digest = _digest(part_id)
                    if digest in skip:
                        continue
                    try:
                        record = self._record(row)
                    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
                        bad.append(f"row {rowid}")
                        continue
                    if record is not None:
                        records.append(record)
                        tail.append([rowid, digest])
                if page.end is not None:
                    state["rowid"], end_id = page.end
                    state["anchor"] = _digest(end_id) if end_id else None
                    break
            del tail[:-TAIL]
        finally:
            db.close()
        if immutable and _identity(os.stat(path)) != _identity(st):
            raise _Changed
        return records, bad

    @staticmethod
    def _resume_point(db: sqlite3.Connection, state: FileState) -> int:
        """The rowid to read after: the checkpoint's, unless its row was deleted (then rowids
        above the newest remembered part still in place may have been given to new parts)."""
        rowid = int(state["rowid"])
        if rowid == 0 or _holds(db, rowid, state["anchor"]):
            return rowid
        for kept_rowid, digest in reversed(state["tail"]):
            if _holds(db, kept_rowid, digest):
                return int(kept_rowid)
        return 0  # every remembered part is gone: from the start (keys dedupe)

    def _record(self, row: tuple[Any, ...]) -> SourceRecord | None:
        _, part_id, created, part_text, message_text, session_created = row
        part = json.loads(part_text)
        if not isinstance(part, dict) or part.get("type") != "step-finish":
            return None  # another part mentioning the words: not usage
        if not isinstance(part_id, str) or not part_id:
            raise TypeError("a part without an id")
        tokens = part["tokens"]
        cache = tokens.get("cache") if isinstance(tokens, dict) else None
        if not isinstance(tokens, dict) or not isinstance(cache, (dict, type(None))):
            raise TypeError("tokens is not an object of counts")
        cache = cache or {}
        message = _object(message_text)
        if self.skip_imports and message.get("providerID") == IMPORTED_PROVIDER:
            return None
        if _forked_copy(message, session_created):
            return None
        return SourceRecord(
            key=f"part:{part_id}",
            timestamp=counts.from_ms(created),
            model=counts.model(message.get("modelID")),
            input_tokens=counts.count(tokens.get("input")),
            output_tokens=counts.count(tokens.get("output"))
            + counts.count(tokens.get("reasoning")),
            cache_write_tokens=counts.count(cache.get("write")),
            cache_read_tokens=counts.count(cache.get("read")),
            cost_usd=counts.cost(part.get("cost")),
        )


def _forked_copy(message: dict[str, Any], session_created: Any) -> bool:
    """Whether the part's message was copied into its session by a fork (OpenCode's and Kilo's
    `fork` write every message and part of the session again, step-finish parts and their
    tokens included, under new ids in a new session, keeping each message's own `time`): its
    step was counted where it was first written."""
    time_info = message.get("time")
    created = time_info.get("created") if isinstance(time_info, dict) else None
    if type(created) is not int or type(session_created) is not int:
        return False  # no way to tell: counted
    return created < session_created - FORK_SLACK_MS


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _stamp(path: Path, st: os.stat_result) -> list[int]:
    """(size, mtime) of the database and of its write-ahead log, where commits land first."""
    try:
        wal = os.stat(f"{path}-wal")
        wal_size, wal_mtime = wal.st_size, wal.st_mtime_ns
    except OSError:
        wal_size = wal_mtime = -1
    return [st.st_ino, st.st_size, st.st_mtime_ns, wal_size, wal_mtime]


def _check_schema(db: sqlite3.Connection) -> None:
    for table, needed in REQUIRED.items():
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not columns:
            raise SchemaProblem(
                f"no `{table}` table: not an OpenCode database, or a schema this version does "
                f"not read ({_version(db)})"
            )
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SchemaProblem(
                f"`{table}` has no {', '.join(missing)}: a schema this version does not read "
                f"({_version(db)})"
            )


def _version(db: sqlite3.Connection) -> str:
    """The newest migration applied (OpenCode's `migration` table, or drizzle's before it)."""
    for query in (
        "SELECT max(id) FROM migration",
        "SELECT max(created_at) FROM __drizzle_migrations",
    ):
        try:
            row = db.execute(query).fetchone()
        except sqlite3.Error:
            continue
        if row and row[0] is not None:
            return f"schema version {row[0]}"
    return "no schema version recorded"


def _page(db: sqlite3.Connection, after: int) -> _Page:
    """Up to PAGE candidate rows after `after`, in one transaction; the last page also says
    where `part` ended in the same snapshot."""
    db.execute("BEGIN")
    try:
        rows = db.execute(
            "SELECT p.rowid, p.id, p.time_created, p.data, m.data, s.time_created FROM part AS p "
            "LEFT JOIN message AS m ON m.id = p.message_id "
            "LEFT JOIN session AS s ON s.id = p.session_id "
            "WHERE p.rowid > ? AND p.data LIKE '%step-finish%' ORDER BY p.rowid LIMIT ?",
            (after, PAGE),
        ).fetchall()
        end = None
        if len(rows) < PAGE:
            last = db.execute("SELECT rowid, id FROM part ORDER BY rowid DESC LIMIT 1").fetchone()
            end = (int(last[0]), str(last[1])) if last else (0, "")
    finally:
        db.execute("COMMIT")
    return _Page(rows, end)


def _holds(db: sqlite3.Connection, rowid: int, digest: str | None) -> bool:
    row = db.execute("SELECT id FROM part WHERE rowid = ?", (rowid,)).fetchone()
    return row is not None and digest is not None and _digest(row[0]) == digest


def _digest(part_id: Any) -> str:
    return hashlib.blake2b(str(part_id).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}  # a part whose message is gone: no model
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text
