"""The index's rows: where each event's winning version sits, and the sums of the winners.

One row per event_id (a 16-byte hash of it): the winner's token total, when it was written,
its ledger file and byte offset, its quarter hour. One row per (quarter hour, tool, model):
the winners' totals, exact (spend and metrics as decimal text). A version that replaces a
winner takes the old one's numbers out of its sums (read back from its ledger line) and puts
its own in, so the sums always equal a fresh read of the ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from hashlib import blake2b
from typing import Any, NamedTuple

from dx_lsp_telemetry.ledger.ledger import UsageLine
from dx_lsp_telemetry.record.events import UsageEvent
from dx_lsp_telemetry.record.summary import ToolDay, Totals
from dx_lsp_telemetry.settings.days import parse_ts

#: the sums' granularity: every zone in use since 1979 starts its days on a quarter hour
SLOT_SECONDS = 900
#: ids looked up per query (SQLite allows 32766 variables; fewer keep statements small)
LOOKUP_BATCH = 500

SCHEMA = """
CREATE TABLE events(
    id BLOB PRIMARY KEY, total INTEGER NOT NULL, rec INTEGER NOT NULL,
    day INTEGER NOT NULL, off INTEGER NOT NULL, slot INTEGER NOT NULL,
    spread INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sums(
    slot INTEGER NOT NULL, tool TEXT NOT NULL, model TEXT NOT NULL,
    events INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,
    cwrite INTEGER NOT NULL, cread INTEGER NOT NULL, spend TEXT NOT NULL,
    metrics TEXT NOT NULL, PRIMARY KEY(slot, tool, model)) WITHOUT ROWID;
CREATE TABLE markers(
    slot INTEGER NOT NULL, day INTEGER NOT NULL, PRIMARY KEY(slot, day)) WITHOUT ROWID;
CREATE TABLE changes(day INTEGER PRIMARY KEY, n INTEGER NOT NULL);
"""
#: made once the tables are filled: a rebuild is faster that way
INDEXES = "CREATE INDEX events_at ON events(day, off, slot);"
#: the proleptic ordinal of 1970-01-01: a slot's UTC date is this plus its epoch day
_EPOCH_DAY = 719_163

Deltas = dict[tuple[int, str, str], Totals]


class Place(NamedTuple):
    """Where a version sits and how it ranks (tuples: made for every line indexed)."""

    total: int
    rec: int
    day: int
    off: int
    #: versions of this event were seen in more than one ledger file
    spread: int = 0

    def beaten_by(self, other: Place) -> bool:
        return other.total > self.total or (
            other.total == self.total
            and (other.rec, other.day, other.off) > (self.rec, self.day, self.off)
        )


class Version(NamedTuple):
    """One usage line as the index sees it."""

    key: bytes
    at: Place
    slot: int
    event: UsageEvent


ReadBack = Callable[[Sequence[Place]], list[Version]]


def event_key(event_id: str) -> bytes:
    return blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def micros(recorded_at: str) -> int:
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


def version_of(line: UsageLine, day: int, offset: int) -> Version:
    return written(line.event, micros(line.recorded_at), day, offset)


def written(event: UsageEvent, rec: int, day: int, offset: int) -> Version:
    place = Place(event.token_total, rec, day, offset)
    return Version(event_key(event.event_id), place, slot_of(event.timestamp), event)


def winners(db: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, Place]:
    found: dict[bytes, Place] = {}
    for i in range(0, len(keys), LOOKUP_BATCH):
        chunk = keys[i : i + LOOKUP_BATCH]
        marks = ",".join("?" * len(chunk))
        for key, total, rec, day, off, spread in db.execute(
            f"SELECT id, total, rec, day, off, spread FROM events WHERE id IN ({marks})", chunk
        ):
            found[key] = Place(total, rec, day, off, spread)
    return found


def apply(db: sqlite3.Connection, versions: list[Version], read_back: ReadBack) -> None:
    """Make the winners among `versions` and the index's the index's winners, with sums."""
    best: dict[bytes, Version] = {}
    for v in versions:
        held = best.get(v.key)
        if held is None or held.at.beaten_by(v.at):
            best[v.key] = v
    current = winners(db, list(best))
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    spread: list[tuple[bytes]] = []
    replaced: list[Place] = []
    deltas: Deltas = {}
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
        delta(deltas, v).add(v.event)
    for gone in read_back(replaced):
        delta(deltas, gone).add(gone.event, -1)
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
    add_sums(db, deltas)


def delta(deltas: Deltas, v: Version) -> Totals:
    key = (v.slot, v.event.tool, v.event.model or "")
    found = deltas.get(key)
    if found is None:
        found = deltas[key] = Totals()
    return found


def utc_day_of_slot(slot: int) -> int:
    return slot * SLOT_SECONDS // 86_400 + _EPOCH_DAY


def touch(db: sqlite3.Connection, days: set[int]) -> None:
    """Count a change of these UTC days' sums or markers (what a reader remembers is keyed by
    these counts)."""
    db.executemany(
        "INSERT INTO changes VALUES (?, 1) ON CONFLICT(day) DO UPDATE SET n = n + 1",
        [(d,) for d in sorted(days)],
    )


def add_sums(db: sqlite3.Connection, deltas: Deltas) -> None:
    touch(db, {utc_day_of_slot(slot) for slot, _, _ in deltas})
    for (slot, tool, model), change in deltas.items():
        row = db.execute(
            "SELECT events, input, output, cwrite, cread, spend, metrics FROM sums "
            "WHERE slot=? AND tool=? AND model=?",
            (slot, tool, model),
        ).fetchone()
        totals = _totals_of(row) if row else Totals()
        totals.merge(change)
        if totals.events <= 0:
            db.execute("DELETE FROM sums WHERE slot=? AND tool=? AND model=?", (slot, tool, model))
        else:
            db.execute(
                "INSERT OR REPLACE INTO sums VALUES (?,?,?,?,?,?,?,?,?,?)",
                (slot, tool, model, *_columns_of(totals)),
            )


def sums_of(db: sqlite3.Connection, first_slot: int, end_slot: int) -> dict[str, ToolDay]:
    """Per tool (and per model), the winners' totals in [first_slot, end_slot)."""
    tools: dict[str, ToolDay] = {}
    for tool, model, *columns in db.execute(
        "SELECT tool, model, events, input, output, cwrite, cread, spend, metrics "
        "FROM sums WHERE slot >= ? AND slot < ?",
        (first_slot, end_slot),
    ).fetchall():
        sums = tools.setdefault(tool, ToolDay())
        totals = _totals_of(columns)
        sums.totals.merge(totals)
        if model:
            sums.by_model.setdefault(model, Totals()).merge(totals)
    return tools


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
