"""Goose (Block): the `sessions` table of `sessions/sessions.db`, one running total per session.

Goose keeps, per session row, `accumulated_input_tokens`, `accumulated_output_tokens`,
`accumulated_cache_read_tokens`, `accumulated_cache_write_tokens` and `accumulated_cost` (USD),
added to after every model call (older schemas lack the cache and cost columns; the oldest have
only the last call's `input_tokens`/`output_tokens`, which are not a running total and are
never read). Goose's input includes the cache reads and writes (its Anthropic format adds them
in; Google's prompt count includes the cached part): DX's input is what is left of it.

Each session's total becomes events by `running` (growth only, dated when it happened, one event
per session and quarter hour). `updated_at` is the time of the last change; `created_at` bounds
the ledger lookup of a session the checkpoint does not know. `hidden` sessions are Goose's own
bookkeeping and are skipped. The model is `model_config_json.model_name`. Never read: the
messages, the working folder, names, recipes.

The database is Goose's live one: opened read-only (`sqlite_ro`), a locked one is read again
shortly; an unchanged one (the database and its `-wal`) is not queried at all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources import sqlite_ro
from dx_lsp_telemetry.sources.base import FileState, ReadResult
from dx_lsp_telemetry.sources.running import Snapshot
from dx_lsp_telemetry.sources.running_source import RunningTotalDatabase
from dx_lsp_telemetry.sources.values import cost_usd, model_name, token_count, tool_time

DB_NAME = "sessions.db"
_COUNTS = (
    "accumulated_input_tokens",
    "accumulated_output_tokens",
    "accumulated_cache_write_tokens",
    "accumulated_cache_read_tokens",
)
_OPTIONAL = ("accumulated_cost", "model_config_json", "session_type", "updated_at", "created_at")


class Goose(RunningTotalDatabase):
    name: ClassVar[str] = "goose"
    label: ClassVar[str] = "goose"
    db_name: ClassVar[str] = DB_NAME
    debounce_seconds: ClassVar[float] = 1.0

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip()
        if text:
            path = Path(text).expanduser()
            if path.name == DB_NAME:
                return [path.parent]
            return [path / "sessions" if (path / "sessions" / DB_NAME).exists() else path]
        root = env.get("GOOSE_PATH_ROOT", "").strip()
        if root:
            return [Path(root).expanduser() / "data" / "sessions"]
        home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
        if sys.platform == "win32":
            appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
            return [appdata / "Block" / "goose" / "data" / "sessions"]
        if sys.platform == "darwin":
            return [home / "Library" / "Application Support" / "goose" / "sessions"]
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        return [data / "goose" / "sessions"]

    def read(self, path: Path, state: FileState) -> ReadResult:
        sig = sqlite_ro.signature(path)
        if state.get("sig") == sig:
            return ReadResult([], state)
        try:
            with sqlite_ro.open_ro(path) as db:
                cols = sqlite_ro.columns(db, "sessions")
                if "id" not in cols:
                    return ReadResult([], state, problem="no Goose `sessions` table")
                counts = [c if c in cols else "NULL" for c in _COUNTS]
                extra = [c if c in cols else "NULL" for c in _OPTIONAL]
                rows = db.execute(
                    f"SELECT id, {', '.join(counts + extra)} FROM sessions ORDER BY id"
                ).fetchall()
        except sqlite_ro.Busy:
            return ReadResult([], state, retry=True)
        except sqlite_ro.Broken as exc:
            return ReadResult([], state, problem=f"not a readable Goose database ({exc})")
        # one SELECT is one snapshot: a commit after `sig` was taken is read again next time
        snapshots: list[Snapshot] = []
        bad: list[str] = []
        for row in rows:
            try:
                snap = _snapshot(row)
            except (ValueError, TypeError) as exc:
                bad.append(f"{str(row[0])[:100]}: {exc}")
                continue
            if snap is not None:
                snapshots.append(snap)
        sessions = dict(state.get("sessions") or {})
        outcome = self._totals.take(sessions, snapshots)
        new_state: FileState = {"sig": sqlite_ro.trusted(sig), "sessions": sessions}
        problems = []
        if bad:
            problems.append(f"skipped {len(bad)} unreadable sessions (first: {bad[0][:200]})")
        if outcome.resets:
            problems.append(
                f"{outcome.resets} sessions' totals went down (reset?): nothing subtracted"
            )
        return ReadResult(outcome.records, new_state, problem="; ".join(problems) or None)


def _snapshot(row: tuple[Any, ...]) -> Snapshot | None:
    sid, inp, out, cw, cr, cost, model_json, kind, updated, created = row
    if not isinstance(sid, str) or not sid:
        raise TypeError("a session without an id")
    if kind == "hidden":
        return None
    inp, out, cw, cr = (token_count(v) for v in (inp, out, cw, cr))
    return Snapshot(
        session=sid,
        usage=(max(0, inp - cw - cr), out, cw, cr),
        cost=cost_usd(cost),
        model=_model(model_json),
        updated=tool_time(updated),
        created=tool_time(created),
    )


def _model(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        config = json.loads(text)
    except ValueError:
        return None
    return model_name(config.get("model_name") if isinstance(config, dict) else None)
