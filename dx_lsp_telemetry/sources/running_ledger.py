"""What the ledger already holds of a running-total source's sessions.

A running-total source (see `running`) keeps what it counted of each session in its checkpoint.
When that is not known (a session seen first in this file, a checkpoint lost, a crash between
the ledger write and the checkpoint), the ledger is asked instead: the source's events are one
per (session, quarter hour), their ids a hash of both, so the ids of a session's events can be
made again for every quarter hour that holds an event of the source, and looked up.

The ledger files are read once per scan at most (from the oldest day asked for on), only the
lines of this source parsed (a byte search skips the others); each event's winning version is
chosen as the ledger does: the larger token total, on a tie the one written later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from dx_lsp_telemetry.ledger.ledger import complete_lines, ledger_path, list_ledger_dates
from dx_lsp_telemetry.settings.days import parse_ts

#: the index's granularity: every zone in use starts its days on a quarter hour
SLOT_SECONDS = 900

#: DX's disjoint buckets: input without cache, output, cache writes, cache reads
Usage = tuple[int, int, int, int]


class Held(NamedTuple):
    """One event's winning version in the ledger."""

    usage: Usage
    #: the tool's own cost (USD), None where the spend is an estimate or absent
    cost: float | None
    at: float
    rank: tuple[int, str, str, int]


def slot_of(epoch: float) -> int:
    return int(epoch // SLOT_SECONDS)


class LedgerView:
    """The winning versions of one source's events, from the ledger files read so far."""

    def __init__(self, ledger_dir: Path, label: str, event_id: Callable[[str], str]) -> None:
        self.ledger_dir = ledger_dir
        self.label = label
        self._event_id = event_id
        self._needle = f'"source":{json.dumps(label)}'.encode()
        self._held: dict[str, Held] = {}
        self._slots: set[int] = set()
        #: ledger files of this day and later are read (None: none yet)
        self._from: date | None = None

    def cover(self, first: date | None) -> None:
        """Read the ledger files from `first` on (None: all) not read yet."""
        if self._from is not None and (first is not None and first >= self._from):
            return
        dates = list_ledger_dates(self.ledger_dir)
        for day in dates:
            if (first is None or day >= first) and (self._from is None or day < self._from):
                self._read(day)
        floor = first if first is not None else (dates[0] if dates else date.min)
        self._from = floor if self._from is None else min(self._from, floor)

    def counted(self, session: str, first_slot: int | None) -> dict[int, Held]:
        """The session's events by quarter hour, from `first_slot` on (None: all)."""
        found: dict[int, Held] = {}
        for slot in self._slots:
            if first_slot is not None and slot < first_slot:
                continue
            held = self._held.get(self._event_id(f"{session}:{slot}"))
            if held is not None:
                found[slot] = held
        return found

    def _read(self, day: date) -> None:
        try:
            with open(ledger_path(self.ledger_dir, day), "rb") as f:
                data = f.read()
        except OSError:
            return
        stamp = day.isoformat()
        for offset, raw in complete_lines(data, 0):
            if self._needle in raw:
                self._take(raw, stamp, offset)

    def _take(self, raw: bytes, stamp: str, offset: int) -> None:
        try:
            line: Any = json.loads(raw)
            if not isinstance(line, dict) or line.get("type") != "usage":
                return
            if line.get("source") != self.label:
                return
            event_id = line["event_id"]
            usage: Usage = (
                _int(line.get("input_tokens")),
                _int(line.get("output_tokens")),
                _int(line.get("cache_write_tokens")),
                _int(line.get("cache_read_tokens")),
            )
            at = parse_ts(line["timestamp"]).timestamp()
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            return  # a bad line is the ledger reader's to report
        recorded = line.get("recorded_at")
        rank = (sum(usage), recorded if isinstance(recorded, str) else "", stamp, offset)
        held = self._held.get(event_id)
        if held is not None and held.rank >= rank:
            return
        self._held[event_id] = Held(usage, _tool_cost(line), at, rank)
        self._slots.add(slot_of(at))


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a token count")
    return value


def _tool_cost(line: dict[str, Any]) -> float | None:
    """The event's spend as the tool's cost in USD; None for an estimate or nothing."""
    metrics = line.get("metrics")
    if isinstance(metrics, dict) and "spend_estimated_cents" in metrics:
        return None
    spend = line.get("spend_cents")
    if isinstance(spend, bool) or not isinstance(spend, (int, float)) or spend <= 0:
        return None
    return float(spend) / 100


def slot_day(slot: int) -> date:
    """The UTC date of a quarter hour (the ledger file its events are in)."""
    return datetime.fromtimestamp(slot * SLOT_SECONDS, tz=timezone.utc).date()
