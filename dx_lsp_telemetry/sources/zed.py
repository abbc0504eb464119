"""Zed's built-in agent: `threads/threads.db` in Zed's data folder, one running total per thread.

Each row of the `threads` table is a whole thread as JSON (`data_type` `json`, or `zstd`:
compressed, as Zed writes them today), rewritten on every save. Its `cumulative_token_usage`
(`input_tokens`, `output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`,
Anthropic's disjoint buckets) is the thread's running total; the per-request map beside it is
overwritten at every step and never read. Threads `imported` from a share carry no usage of this
machine and are skipped. There is no cost: `spend.estimate` applies, with `model.model`.

Totals become events by `running` (growth only, dated when it happened, one event per thread and
quarter hour). The row's `updated_at` is the time of the last change and decides which threads
are decoded at all: an unchanged thread is not read again. Never read: the messages, summaries,
folders. External agents (Claude Code and others over ACP) keep their usage elsewhere, not here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources import sqlite_ro, zstd
from dx_lsp_telemetry.sources.base import FileState, ReadResult
from dx_lsp_telemetry.sources.running import Snapshot
from dx_lsp_telemetry.sources.running_source import RunningTotalDatabase
from dx_lsp_telemetry.sources.values import model_name, token_count, tool_time

DB_NAME = "threads.db"
#: thread rows decoded per query (bounds memory: a thread can be megabytes)
FETCH_BATCH = 50


class Zed(RunningTotalDatabase):
    name: ClassVar[str] = "zed"
    label: ClassVar[str] = "zed"
    db_name: ClassVar[str] = DB_NAME
    debounce_seconds: ClassVar[float] = 1.0

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip()
        if text:
            path = Path(text).expanduser()
            if path.name == DB_NAME:
                return [path.parent]
            return [path if path.name == "threads" else path / "threads"]
        home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
        if sys.platform == "win32":
            local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
            return [local / "Zed" / "threads"]
        if sys.platform == "darwin":
            return [home / "Library" / "Application Support" / "Zed" / "threads"]
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        return [data / "zed" / "threads"]

    def read(self, path: Path, state: FileState) -> ReadResult:
        sig = sqlite_ro.signature(path)
        if state.get("sig") == sig:
            return ReadResult([], state)
        seen: dict[str, Any] = dict(state.get("seen") or {})
        try:
            with sqlite_ro.open_ro(path) as db:
                cols = sqlite_ro.columns(db, "threads")
                if not {"id", "updated_at", "data_type", "data"} <= cols:
                    return ReadResult([], state, problem="no Zed `threads` table")
                created = "created_at" if "created_at" in cols else "NULL"
                db.execute("BEGIN")  # one snapshot for both queries
                listed = db.execute("SELECT id, updated_at FROM threads").fetchall()
                changed = [tid for tid, at in listed if seen.get(tid) != at]
                rows = []
                for i in range(0, len(changed), FETCH_BATCH):
                    chunk = changed[i : i + FETCH_BATCH]
                    marks = ",".join("?" * len(chunk))
                    rows += db.execute(
                        f"SELECT id, updated_at, {created}, data_type, data FROM threads "
                        f"WHERE id IN ({marks}) ORDER BY id",
                        chunk,
                    ).fetchall()
                db.execute("COMMIT")
        except sqlite_ro.Busy:
            return ReadResult([], state, retry=True)
        except sqlite_ro.Broken as exc:
            return ReadResult([], state, problem=f"not a readable Zed database ({exc})")
        snapshots: list[Snapshot] = []
        bad: list[str] = []
        undecodable = 0
        for tid, updated, made, kind, data in rows:
            if kind == "zstd" and not zstd.available():
                undecodable += 1
                continue  # not marked seen: read once a decoder is there
            try:
                snap = _snapshot(tid, updated, made, kind, data)
            except (ValueError, TypeError, KeyError, RecursionError) as exc:
                bad.append(f"{tid}: {exc}")
            else:
                if snap is not None:
                    snapshots.append(snap)
            seen[str(tid)] = updated
        present = {str(tid) for tid, _ in listed}
        seen = {k: v for k, v in seen.items() if k in present}
        sessions = {k: v for k, v in (state.get("sessions") or {}).items() if k in present}
        outcome = self._totals.take(sessions, snapshots)
        new_state: FileState = {"sig": sqlite_ro.trusted(sig), "seen": seen, "sessions": sessions}
        problems = []
        if bad:
            problems.append(f"skipped {len(bad)} unreadable threads (first: {bad[0][:200]})")
        if undecodable:
            problems.append(
                f"{undecodable} threads are zstd-compressed and this Python has no zstd "
                "decoder (Python 3.14+, the zstandard package or the system's libzstd)"
            )
        if outcome.resets:
            problems.append(
                f"{outcome.resets} threads' totals went down (reset?): nothing subtracted"
            )
        return ReadResult(outcome.records, new_state, problem="; ".join(problems) or None)


def _snapshot(tid: Any, updated: Any, made: Any, kind: Any, data: Any) -> Snapshot | None:
    if not isinstance(tid, str) or not tid:
        raise TypeError("a thread without an id")
    if not isinstance(data, (bytes, str)):
        raise TypeError("the thread's data is not a blob")
    raw = data.encode() if isinstance(data, str) else data
    if kind == "zstd":
        raw = zstd.decompress(raw)
    elif kind != "json":
        raise ValueError(f"unknown data_type {kind!r}")
    thread = json.loads(raw)
    if not isinstance(thread, dict):
        raise TypeError("the thread is not a JSON object")
    if thread.get("imported") is True:
        return None
    usage = thread.get("cumulative_token_usage") or {}
    if not isinstance(usage, dict):
        raise TypeError("cumulative_token_usage is not an object")
    return Snapshot(
        session=tid,
        usage=(
            token_count(usage.get("input_tokens")),
            token_count(usage.get("output_tokens")),
            token_count(usage.get("cache_creation_input_tokens")),
            token_count(usage.get("cache_read_input_tokens")),
        ),
        cost=None,
        model=_model(thread.get("model")),
        updated=tool_time(updated),
        created=tool_time(made),
    )


def _model(value: Any) -> str | None:
    return model_name(value.get("model") if isinstance(value, dict) else None)
