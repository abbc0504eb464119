"""Running totals: tools that keep one cumulative total per session, rewritten in place.

Factory Droid, Goose and Zed do not log calls: each keeps, per session, the tokens spent so far,
overwritten after every call. This module turns what such a total says each time it is read
into usage events, exactly once:

- Only growth counts. Each bucket counts its increase over what was counted before; a bucket
  that went down (the tool reset or rewound the session) subtracts nothing, is reported as a
  problem of the read, and counting resumes from the lower value.
- Growth is dated when it happened as near as can be told: at the tool's own time of the
  session's last change when that lies after the previous count and not in the future, else at
  the moment it is seen. A session used over two days puts each day's growth on its day. A
  session seen for the first time is dated at its last change: enabling a source books old
  sessions on the days they were last used, not on today.
- One event per (session, quarter hour) of that date: its key is the session id and the
  quarter hour (the granularity of the day sums, so any day boundary splits it correctly), and
  never a path, so the same session in two folders is one. Growth seen again within the same
  quarter hour sends that event again with the larger value: the ledger keeps the version with
  the larger token total, so the quarter hour's growth counts once however often it is sent.
- What was counted of each session (the totals, the open quarter hour and its value) is kept
  in the file's checkpoint, which is saved after the ledger write. Where it is not known there
  (a session first seen in this file, a copy of one counted from another folder, a checkpoint
  lost or unreadable) or may be behind the ledger (a crash between the ledger write and the
  checkpoint: checked once per process, before a session's first growth is sent), the ledger
  itself says what was counted: that session's events are found by their ids (`running_ledger`)
  and only growth beyond their sum counts.

Two windows never read one source at once (the ingest lock), and the second takes up the first's
checkpoint. Limits: after a lost checkpoint, a session whose first part was older than the
retention window (never in the ledger) is counted again from what the ledger still holds; two
diverging copies of one session that grow in the same quarter hour count the larger only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.settings.days import utc_now
from dx_lsp_telemetry.sources.base import SourceRecord
from dx_lsp_telemetry.sources.running_ledger import (
    SLOT_SECONDS,
    Held,
    LedgerView,
    Usage,
    slot_day,
    slot_of,
)

#: a session's creation time may be this much behind its first event (clocks, time zones)
CREATED_SLACK = timedelta(days=1)
#: what a session state holds in the checkpoint (JSON): totals counted ("b", "bc"), the open
#: quarter hour ("s"), its value ("v", "vc") and the event's time ("at", epoch seconds)
SessionState = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """What a tool's file says of one session now, in DX's disjoint buckets."""

    session: str
    usage: Usage
    #: the tool's own cost so far (USD), or None
    cost: float | None
    model: str | None
    #: the tool's own time of the session's last change
    updated: datetime | None = None
    #: when the session began (bounds the ledger read when it is asked)
    created: datetime | None = None


@dataclass
class Outcome:
    records: list[SourceRecord]
    #: sessions whose total went down in this file
    resets: int = 0


class RunningTotals:
    """Turns snapshots into records; one per source instance (its state lives across scans)."""

    def __init__(self, event_id: Callable[[str], str], label: str) -> None:
        self._event_id = event_id
        self._label = label
        self._ledger_dir: Path | None = None
        self._now = utc_now()
        self._view: LedgerView | None = None
        #: sessions counted in this scan, from any file (a copy read later takes this up)
        self._scanned: dict[str, SessionState] = {}
        #: sessions whose checkpoint was checked against the ledger in this process
        self._verified: set[str] = set()

    def begin(self, ledger_dir: Path, now: datetime) -> None:
        """A scan starts: the ledger may have changed since, and the clock moved."""
        self._ledger_dir = ledger_dir
        self._now = now
        self._view = None
        self._scanned = {}

    def take(self, sessions: dict[str, SessionState], snapshots: Iterable[Snapshot]) -> Outcome:
        """Records for the growth of each snapshot; `sessions` (the file's) follows along."""
        out = Outcome([])
        for snap in snapshots:
            record, reset = self._one(sessions, snap)
            if record is not None:
                out.records.append(record)
            out.resets += reset
        return out

    def _one(
        self, sessions: dict[str, SessionState], snap: Snapshot
    ) -> tuple[SourceRecord | None, bool]:
        sid = snap.session
        own = sessions.get(sid)
        state: SessionState | None
        merged = False
        if own is None:
            state = copy.deepcopy(self._scanned.get(sid))
            if state is None:
                state = self._from_ledger(sid, snap.created)
                if state is not None:
                    self._scanned[sid] = copy.deepcopy(state)
            merged = state is not None
            self._verified.add(sid)
        else:
            state = own
            if sid not in self._verified and _grows(state, snap):
                merged = self._reconcile(sid, state)
                self._verified.add(sid)
        if state is None:
            state = {"b": [0, 0, 0, 0], "bc": None, "s": None, "v": [0, 0, 0, 0], "vc": None}
        base: list[int] = state["b"]
        growth = [max(0, snap.usage[i] - base[i]) for i in range(4)]
        reset = own is not None and not merged and any(snap.usage[i] < base[i] for i in range(4))
        cost_growth: float | None = None
        if snap.cost is not None:
            before = state.get("bc") or 0.0
            cost_growth = max(0.0, round(snap.cost - before, 10))
            reset = reset or (own is not None and not merged and snap.cost < before - 1e-9)
            state["bc"] = snap.cost
        state["b"] = list(snap.usage)
        record = None
        if any(growth):
            record = self._grow(sid, state, snap, growth, cost_growth)
        sessions[sid] = state
        held = self._scanned.get(sid)
        if held is None or record is not None or sum(state["b"]) >= sum(held["b"]):
            # a stale copy (a lower total) lowers its own file's base only: a copy read later
            # starts from the most that was counted
            self._scanned[sid] = copy.deepcopy(state)
        return record, reset

    def _grow(
        self,
        sid: str,
        state: SessionState,
        snap: Snapshot,
        growth: list[int],
        cost_growth: float | None,
    ) -> SourceRecord:
        at = self._date(snap.updated, state.get("at"))
        slot = slot_of(at)
        if state.get("s") == slot:
            value = [state["v"][i] + growth[i] for i in range(4)]
            held_cost = state.get("vc")
            cost = None if cost_growth is None else (held_cost or 0.0) + cost_growth
        else:
            value, cost = growth, cost_growth
        state.update({"s": slot, "v": value, "vc": cost, "at": at})
        return SourceRecord(
            key=f"{sid}:{slot}",
            timestamp=datetime.fromtimestamp(at, tz=timezone.utc),
            model=snap.model,
            input_tokens=value[0],
            output_tokens=value[1],
            cache_write_tokens=value[2],
            cache_read_tokens=value[3],
            cost_usd=None if cost is None else round(cost, 10),
        )

    def _date(self, updated: datetime | None, last: float | None) -> float:
        """When growth seen now happened: the tool's time of the change if it is after the
        last count and not ahead of the clock, else now (never before the last count)."""
        now = self._now.timestamp()
        floor = last if last is not None else float("-inf")
        if updated is not None:
            when = updated.timestamp()
            if floor < when <= now:
                return when
        return max(now, floor)

    # -- the ledger, where the checkpoint does not know -----------------------------------

    def _ledger(self) -> LedgerView | None:
        if self._ledger_dir is None:
            return None
        if self._view is None:
            self._view = LedgerView(self._ledger_dir, self._label, self._event_id)
        return self._view

    def _from_ledger(self, sid: str, created: datetime | None) -> SessionState | None:
        """What the ledger holds of a session the checkpoint does not know, as its state."""
        view = self._ledger()
        if view is None:
            return None
        first_slot = None
        if created is not None:
            first_slot = slot_of((created - CREATED_SLACK).timestamp())
        view.cover(None if first_slot is None else slot_day(first_slot))
        found = view.counted(sid, first_slot)
        if not found:
            return None
        state: SessionState = {"b": [0, 0, 0, 0], "bc": None}
        for held in found.values():
            _add(state, held)
        last = max(found)
        _open(state, last, found[last])
        return state

    def _reconcile(self, sid: str, state: SessionState) -> bool:
        """Take in what the ledger holds beyond the checkpoint's open quarter hour (written
        by a process that died before its checkpoint); whether anything was."""
        view = self._ledger()
        slot = state.get("s")
        if view is None or not isinstance(slot, int):
            return False
        view.cover(slot_day(slot))
        found = view.counted(sid, slot)
        changed = False
        held = found.pop(slot, None)
        if held is not None and sum(held.usage) > sum(state["v"]):
            v = state["v"]
            u = held.usage
            extra = Held(
                (
                    max(0, u[0] - v[0]),
                    max(0, u[1] - v[1]),
                    max(0, u[2] - v[2]),
                    max(0, u[3] - v[3]),
                ),
                None if held.cost is None else max(0.0, held.cost - (state.get("vc") or 0.0)),
                held.at,
                held.rank,
            )
            _add(state, extra)
            _open(state, slot, held)
            changed = True
        for later in sorted(found):
            _add(state, found[later])
            _open(state, later, found[later])
            changed = True
        return changed


def _grows(state: SessionState, snap: Snapshot) -> bool:
    base = state["b"]
    if any(snap.usage[i] > base[i] for i in range(4)):
        return True
    return snap.cost is not None and snap.cost > (state.get("bc") or 0.0) + 1e-9


def _add(state: SessionState, held: Held) -> None:
    state["b"] = [state["b"][i] + held.usage[i] for i in range(4)]
    if held.cost is not None:
        state["bc"] = (state.get("bc") or 0.0) + held.cost


def _open(state: SessionState, slot: int, held: Held) -> None:
    state.update({"s": slot, "v": list(held.usage), "vc": held.cost, "at": held.at})


__all__ = ["SLOT_SECONDS", "Outcome", "RunningTotals", "SessionState", "Snapshot"]
