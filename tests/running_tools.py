"""Shared by the running-total source tests: a settable clock, the tools' files written in their
formats (Factory Droid's settings file, Goose's `sessions.db`, Zed's `threads.db`: none of the
three can run here, so the fixtures follow the formats in the reference notes and the tools'
sources), and a data home driven by the real `Ingestor`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.source_logs import Tally, ledger_tallies

#: text the tools keep beside the counts, that must never reach our files
CANARY = "PRIVATE-canary-7f3e"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, text: str) -> datetime:
        self.now = utc(text)
        return self.now


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def touch(path: Path, when: datetime) -> None:
    ns = int(when.timestamp() * 1e9)
    os.utime(path, ns=(ns, ns))


class Home:
    """A data home and one tool's folder, read by the real `Ingestor` (a new one per process)."""

    def __init__(
        self, tmp_path: Path, make: Callable[[], Source], tool_home: Path, clock: Clock
    ) -> None:
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.make = make
        self.tool_home = tool_home
        self.clock = clock
        self.ingestor = self.process()

    def process(self, *, estimate: bool = False) -> Ingestor:
        """What a new process (a restart, another window, the CLI) reads with."""
        source = self.make()
        tool = source.label
        return Ingestor(
            self.data, source, [self.tool_home], IngestOptions(tool, estimate), clock=self.clock
        )

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / f"{self.ingestor.source.label}.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)

    def tokens(self) -> dict[str, tuple[int, int, int, int]]:
        """Per UTC day: input, output, cache writes, cache reads (any tool)."""
        return {day: t[1:5] for (day, _), t in sorted(self.totals().items())}

    def stored_text(self) -> str:
        """Every byte we wrote: the ledger and the checkpoints."""
        parts = []
        for path in sorted(self.data.home.rglob("*")):
            if path.is_file() and path.suffix in (".jsonl", ".json"):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


# -- Factory Droid -----------------------------------------------------------------------------


def droid_settings(
    path: Path,
    *,
    inp: int,
    out: int,
    cw: int = 0,
    cr: int = 0,
    thinking: int = 0,
    when: datetime,
    model: str = "claude-sonnet-4-5-20250929",
    lock: str = "2025-11-20T08:00:00.000Z",
) -> Path:
    """`<session>.settings.json` as Droid rewrites it after a call, its mtime the write's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": model,
        "reasoningEffort": "none",
        "autonomyLevel": "auto-low",
        "providerLock": "anthropic",
        "providerLockTimestamp": lock,
        "title": f"refactor {CANARY}",
        "cwd": f"/home/dev/{CANARY}",
        "tokenUsage": {
            "inputTokens": inp,
            "outputTokens": out,
            "cacheCreationTokens": cw,
            "cacheReadTokens": cr,
            "thinkingTokens": thinking,
        },
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2))
    os.replace(tmp, path)
    touch(path, when)
    return path


# -- Goose -------------------------------------------------------------------------------------

GOOSE_SCHEMA = """
CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user',
    working_dir TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, extension_data TEXT DEFAULT '{}',
    total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    cache_read_tokens INTEGER, cache_write_tokens INTEGER,
    accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER,
    accumulated_output_tokens INTEGER, accumulated_cache_read_tokens INTEGER,
    accumulated_cache_write_tokens INTEGER, accumulated_cost REAL,
    schedule_id TEXT, recipe_json TEXT, user_recipe_values_json TEXT,
    provider_name TEXT, model_config_json TEXT, goose_mode TEXT NOT NULL DEFAULT 'auto',
    archived_at TIMESTAMP, project_id TEXT, parent_session_id TEXT);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT,
    session_id TEXT NOT NULL REFERENCES sessions(id), role TEXT NOT NULL,
    content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
INSERT INTO schema_version (version) VALUES (13);
"""


class GooseDb:
    """Goose's `sessions.db` (WAL mode, as sqlx opens it), written as Goose does."""

    def __init__(self, path: Path, *, wal: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        if wal:
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(GOOSE_SCHEMA)

    def session(
        self, sid: str, created: str, *, kind: str = "user", model: str = "claude-sonnet-4-5"
    ) -> None:
        config = {"model_name": model, "context_limit": None, "temperature": None}
        self.db.execute(
            "INSERT INTO sessions (id, name, working_dir, session_type, created_at, updated_at,"
            " provider_name, model_config_json) VALUES (?, ?, ?, ?, ?, ?, 'anthropic', ?)",
            (sid, CANARY, f"/home/dev/{CANARY}", kind, created, created, json.dumps(config)),
        )
        self.db.execute(
            "INSERT INTO messages (session_id, role, content_json, created_timestamp)"
            " VALUES (?, 'user', ?, 0)",
            (sid, json.dumps([{"type": "text", "text": CANARY}])),
        )

    def call(
        self,
        sid: str,
        when: str,
        *,
        inp: int,
        out: int,
        cr: int = 0,
        cw: int = 0,
        cost: float | None = None,
    ) -> None:
        """One model call: Goose adds it to the accumulated columns (input with the cache)."""
        total = inp + out
        self.db.execute(
            "UPDATE sessions SET total_tokens = ?, input_tokens = ?, output_tokens = ?,"
            " accumulated_total_tokens = COALESCE(accumulated_total_tokens, 0) + ?,"
            " accumulated_input_tokens = COALESCE(accumulated_input_tokens, 0) + ?,"
            " accumulated_output_tokens = COALESCE(accumulated_output_tokens, 0) + ?,"
            " accumulated_cache_read_tokens = COALESCE(accumulated_cache_read_tokens, 0) + ?,"
            " accumulated_cache_write_tokens = COALESCE(accumulated_cache_write_tokens, 0) + ?,"
            " accumulated_cost = CASE WHEN ? IS NULL THEN accumulated_cost"
            "   ELSE COALESCE(accumulated_cost, 0) + ? END,"
            " updated_at = ? WHERE id = ?",
            (total, inp, out, total, inp, out, cr, cw, cost, cost, when, sid),
        )

    def set(self, sid: str, column: str, value: Any) -> None:
        self.db.execute(f"UPDATE sessions SET {column} = ? WHERE id = ?", (value, sid))

    def close(self) -> None:
        self.db.close()


# -- Zed ---------------------------------------------------------------------------------------

ZED_SCHEMA = """
CREATE TABLE threads (id TEXT PRIMARY KEY, summary TEXT NOT NULL, updated_at TEXT NOT NULL,
    data_type TEXT NOT NULL, data BLOB NOT NULL);
ALTER TABLE threads ADD COLUMN parent_id TEXT;
ALTER TABLE threads ADD COLUMN folder_paths TEXT;
ALTER TABLE threads ADD COLUMN folder_paths_order TEXT;
ALTER TABLE threads ADD COLUMN created_at TEXT;
"""


def zstd_compress(data: bytes) -> bytes:
    """A streamed zstd frame (no content size in its header), as Zed's encoder writes."""
    zstd = shutil.which("zstd")
    assert zstd, "the zstd command (Debian's zstd package) makes the compressed fixtures"
    done = subprocess.run([zstd, "-3", "-q", "-c"], input=data, capture_output=True, check=True)
    return done.stdout


class ZedDb:
    """Zed's `threads.db`, each thread saved whole (zstd JSON) as `save_thread_sync` does."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(ZED_SCHEMA)

    def save(
        self,
        tid: str,
        when: str,
        *,
        inp: int,
        out: int,
        cw: int = 0,
        cr: int = 0,
        model: str = "claude-sonnet-4-5",
        imported: bool = False,
        data_type: str = "zstd",
        raw: bytes | None = None,
    ) -> None:
        thread = {
            "title": f"Fix {CANARY}",
            "messages": [{"User": {"id": "u1", "content": [{"Text": CANARY}]}}],
            "updated_at": when,
            "detailed_summary": None,
            "initial_project_snapshot": None,
            "cumulative_token_usage": {
                "input_tokens": inp,
                "output_tokens": out,
                "cache_creation_input_tokens": cw,
                "cache_read_input_tokens": cr,
            },
            "request_token_usage": {"u1": {"input_tokens": 1, "output_tokens": 1}},
            "model": {"provider": "anthropic", "model": model},
            "profile": "write",
            "imported": imported,
            "version": "0.3.0",
        }
        data = raw if raw is not None else json.dumps(thread).encode()
        if raw is None and data_type == "zstd":
            data = zstd_compress(data)
        self.db.execute(
            "INSERT INTO threads (id, parent_id, folder_paths, folder_paths_order, summary,"
            " updated_at, data_type, data, created_at) VALUES (?, NULL, ?, '0', ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET summary = excluded.summary,"
            " updated_at = excluded.updated_at, data_type = excluded.data_type,"
            " data = excluded.data",
            (tid, f"/home/dev/{CANARY}", CANARY, when, data_type, data, when),
        )

    def close(self) -> None:
        self.db.close()


def rfc3339(ts: datetime) -> str:
    """chrono's `to_rfc3339()` of a UTC time, as Zed stores `updated_at`."""
    return ts.isoformat()


def later(ts: datetime, **delta: float) -> datetime:
    return ts + timedelta(**delta)
