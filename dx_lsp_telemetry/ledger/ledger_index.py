"""The ledger's index: a SQLite file beside the ledger, shared by every sidecar and the CLI.

The JSONL ledger stays the truth; the index is derived from it and can always be rebuilt
from it (`index_rows`: the winners and their sums; `index_files`: how far each file was read,
and proof it is unchanged). A day's totals cost a few rows whatever the history, and only
bytes beyond what is indexed are ever parsed. A ledger file replaced, truncated, edited or
removed behind the index's back, a schema from another version or a corrupt database file
means a rebuild from the ledger; readers see the old index until the new one is complete.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date

from dx_lsp_telemetry.ledger import index_rows
from dx_lsp_telemetry.ledger.index_db import (
    APPLY_BATCH,
    MEMO_DAYS,
    IndexDb,
    IndexedDay,
)
from dx_lsp_telemetry.ledger.index_db import SLOT_SECONDS as SLOT_SECONDS

# what the index's users import from here
from dx_lsp_telemetry.ledger.index_db import IndexNeedsRepair as IndexNeedsRepair
from dx_lsp_telemetry.ledger.index_files import FileRow, IndexStale, empty_row
from dx_lsp_telemetry.ledger.index_rows import Deltas, Place, Version, micros, written
from dx_lsp_telemetry.ledger.ledger import (
    Appended,
    SessionLine,
    complete_lines,
    parse_line,
)
from dx_lsp_telemetry.record.summary import Totals

log = logging.getLogger(__name__)


class LedgerIndex(IndexDb):
    """The index of `ledger_dir`, in `<data folder>/index/`. One per thread (SQLite's rule);
    opened at first use, so it belongs to the thread that uses it. With `repair=False` it
    never rebuilds (which can take seconds): it raises IndexNeedsRepair instead."""

    # -- keeping up with the ledger ----------------------------------------------------------

    def refresh(self, days: Iterable[date] | None = None) -> None:
        """Index what was appended to the ledger (to `days`' files only, if given) since the
        index last looked; rebuild it if the ledger changed in any other way."""
        wanted = None if days is None else list(days)
        self._run(lambda db: self._refresh(db, wanted))

    def _refresh(self, db: sqlite3.Connection, days: list[date] | None) -> None:
        grown = self._grown(db, days)
        if not grown:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            self._index_grown(db, grown)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise

    def _grown(
        self, db: sqlite3.Connection, days: list[date] | None
    ) -> list[tuple[int, os.stat_result]]:
        self._reload_files(db)
        on_disk = self._ledger.stat(days, self._files)
        if days is None:
            gone = set(self._files) - {d for d, _ in on_disk}
            if gone:
                names = ", ".join(self._ledger.name(d) for d in sorted(gone))
                raise IndexStale(f"ledger files were removed behind its back ({names})")
        return [(d, st) for d, st in on_disk if self._ledger.has_new_bytes(self._files.get(d), st)]

    def _index_grown(self, db: sqlite3.Connection, grown: list[tuple[int, os.stat_result]]) -> None:
        self._reload_files(db)  # another process may have indexed some of it meanwhile
        for day, st in grown:
            self._index_file(db, day, st)

    def commits_by_others(self) -> int:
        """A number that changes whenever another connection (any process) commits."""
        return int(self._run(lambda db: db.execute("PRAGMA data_version").fetchone()[0]))

    def unindexed_bytes(self, days: Iterable[date]) -> int:
        """How many bytes of these days' files the index has not read (no reading, no
        writing: for deciding whether a refresh is quick)."""
        wanted = list(days)

        def count(db: sqlite3.Connection) -> int:
            self._reload_files(db)
            total = 0
            for day, st in self._ledger.stat(wanted, self._files):
                row = self._files.get(day)
                total += st.st_size - (row.off if row else 0)
            return total

        return self._run(count)

    @contextmanager
    def unwritten(self, days: Iterable[date] | None = None) -> Iterator[None]:
        """For when `refresh` cannot write (a full disk): the questions asked inside see the
        index as if it were refreshed, from one transaction that is rolled back."""
        wanted = None if days is None else list(days)

        def begin(db: sqlite3.Connection) -> sqlite3.Connection:
            grown = self._grown(db, wanted)
            db.execute("BEGIN IMMEDIATE")
            try:
                self._index_grown(db, grown)
            except BaseException:
                self._rollback(db)
                raise
            return db

        db = self._run(begin)
        try:
            yield
        finally:
            self._rollback(db)

    def _index_file(self, db: sqlite3.Connection, day: int, st: os.stat_result) -> None:
        name = self._ledger.name(day)

        def sink(data: bytes, base: int, lines: int) -> int:
            return self._index_lines(db, day, name, data, base, lines)

        self._store_file(db, self._ledger.read_new(day, self._files.get(day), st, sink))

    def _store_file(self, db: sqlite3.Connection, row: FileRow) -> None:
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)",
            (row.day, row.off, row.lines, row.ino, row.mtime, row.head, row.tail, row.crc),
        )
        self._files[row.day] = row

    def _index_lines(
        self, db: sqlite3.Connection, day: int, name: str, data: bytes, base: int, lines: int
    ) -> int:
        """Parse complete lines read at `base`; returns the line count after them."""
        versions: list[Version] = []
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
                markers.append((index_rows.slot_of(parsed.timestamp), day))
            else:
                versions.append(index_rows.version_of(parsed, day, offset))
            if len(versions) >= APPLY_BATCH:
                index_rows.apply(db, versions, self._ledger.read_back)
                versions = []
        if versions:
            index_rows.apply(db, versions, self._ledger.read_back)
        if markers:
            db.executemany("INSERT OR IGNORE INTO markers VALUES (?,?)", markers)
            index_rows.touch(db, {index_rows.utc_day_of_slot(slot) for slot, _ in markers})
        return lines

    # -- this process's own appends ------------------------------------------------------

    def add_appended(self, appended: Sequence[Appended]) -> None:
        """Index lines this process just wrote (under the ledger lock), without reading them
        back, where the index had read their file up to where they begin; the rest is read."""
        self._run(lambda db: self._add_appended(db, appended))

    def _add_appended(self, db: sqlite3.Connection, appended: Sequence[Appended]) -> None:
        rest: list[date] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            self._reload_files(db)
            versions: list[Version] = []
            grown: dict[int, FileRow] = {}
            for a in appended:
                day = a.file_date.toordinal()
                row = grown.get(day) or self._files.get(day) or empty_row(day)
                if a.sealed or row.off != a.start or (row.ino and row.ino != a.ino):
                    rest.append(a.file_date)  # read from the file instead
                    continue
                rec = micros(a.stamp)
                versions += [written(e, rec, day, off) for e, off in a.lines]
                grown[day] = row.grown_by(a.payload, a.ino, 0, len(a.lines))
            # all at once: one lookup and one insert for what many quick records wrote
            index_rows.apply(db, versions, self._ledger.read_back)
            for day, row in grown.items():
                st = os.stat(self._ledger.path(day))
                if st.st_ino != row.ino:
                    raise IndexStale(f"{self._ledger.name(day)} was replaced while indexed")
                # grown beyond these lines already: the next refresh reads on from there
                mtime = st.st_mtime_ns if st.st_size == row.off else 0
                self._store_file(db, row.grown_by(b"", row.ino, mtime, 0))
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        if rest:
            self._refresh(db, rest)

    # -- questions ---------------------------------------------------------------------------

    def contains(self, event_ids: Iterable[str]) -> set[str]:
        """Which of `event_ids` are in the index."""
        by_key = {index_rows.event_key(i): i for i in event_ids}
        return self._run(lambda db: {by_key[k] for k in index_rows.winners(db, list(by_key))})

    def day(self, first_slot: int, end_slot: int, files: Iterable[date]) -> IndexedDay:
        """What the index holds of the slots [first_slot, end_slot), and how far it has read
        `files` (a zone day's UTC files): one snapshot, so a record and its cover agree."""
        wanted = sorted(files)

        days = [d.toordinal() for d in wanted]
        marks = ",".join("?" * len(days))

        def read(db: sqlite3.Connection) -> IndexedDay:
            own = not db.in_transaction  # else inside `unwritten`: its view
            if own:
                db.execute("BEGIN")
            try:
                # the day's version: its UTC days' change counts and how far their files were
                # read; the same version, the same answer (a status asks every second)
                version = (
                    tuple(
                        db.execute(
                            f"SELECT day, n FROM changes WHERE day IN ({marks})", days
                        ).fetchall()
                    ),
                    tuple(
                        db.execute(
                            f"SELECT day, off FROM files WHERE day IN ({marks})", days
                        ).fetchall()
                    ),
                    self._generation(db),
                )
                held = self._memo.get((first_slot, end_slot)) if own else None
                if held is not None and held[0] == version:
                    return held[1]
                tools = index_rows.sums_of(db, first_slot, end_slot)
                markers = db.execute(
                    "SELECT 1 FROM markers WHERE slot >= ? AND slot < ? LIMIT 1",
                    (first_slot, end_slot),
                ).fetchone()
            finally:
                if own:
                    db.execute("COMMIT")
            offsets = dict(version[1])
            cover = {d: offsets.get(d.toordinal(), 0) for d in wanted}
            answer = IndexedDay(tools, markers is not None, cover)
            if own:  # never a view that is rolled back
                if len(self._memo) >= MEMO_DAYS:
                    self._memo.clear()
                self._memo[(first_slot, end_slot)] = (version, answer)
            return answer

        return self._run(read)

    @staticmethod
    def _generation(db: sqlite3.Connection) -> str:
        row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return str(row[0]) if row else ""

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
            for v in self._ledger.read_back([Place(0, 0, day, off) for day, off in rows]):
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
            deltas: Deltas = {}
            for v in self._ledger.read_back([Place(*row) for row in rows]):
                index_rows.delta(deltas, v).add(v.event, -1)
            index_rows.add_sums(db, deltas)
            for table in ("events", "markers", "files"):
                db.execute(f"DELETE FROM {table} WHERE day = ?", (day,))
            index_rows.touch(db, {day})
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        self._files.pop(day, None)
        return any(row[4] for row in rows)
