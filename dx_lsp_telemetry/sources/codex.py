"""OpenAI Codex CLI: rollouts under `${CODEX_HOME:-~/.codex}/sessions` and `archived_sessions`.

`token_count` events carry the session's cumulative `total_token_usage`; each record is its
positive growth since the previous event of the session, so a re-emitted unchanged total counts
nothing. A fork or a spawned subagent starts by replaying its parent's events: those rows move
the baseline and are never counted. Input includes cached input in Codex's terms; it is split
into uncached input and cache reads. Reasoning is already inside output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, files_under
from dx_lsp_telemetry.sources.tail import appended_lines

#: (input incl. cached, cached input, output incl. reasoning, reasoning, total)
Usage = tuple[int, int, int, int, int]
_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)
#: replayed rows of a fork whose parent is not on disk come as a burst: each within this of
#: the previous one (or of the session's start)
BURST_MS = 1000
#: the model ccusage assumes before the first `turn_context` (for price estimates)
FALLBACK_MODEL = "gpt-5"


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    values = []
    for name in _FIELDS:
        value = raw.get(name, 0) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        values.append(value)
    return (values[0], values[1], values[2], values[3], values[4])


@dataclass(frozen=True)
class _Meta:
    session: str | None
    parent: str | None
    started: datetime | None


class Codex(Source):
    name: ClassVar[str] = "codex"
    label: ClassVar[str] = "codex"
    watch_subdirs: ClassVar[tuple[str, ...]] = ("sessions", "archived_sessions")

    def __init__(self) -> None:
        self._meta: dict[str, _Meta] = {}
        self._by_session: dict[str, Path] = {}
        self._parent_rows: dict[str, tuple[int, list[tuple[datetime, Usage]]]] = {}

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured:
            return [Path(configured).expanduser()]
        text = env.get("CODEX_HOME", "").strip()
        if text:
            return [Path(p.strip()).expanduser() for p in text.split(",") if p.strip()]
        return [Path(env.get("HOME") or Path.home()) / ".codex"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        # every rollout is indexed before any is read: a fork's parent may come later in path
        # order (archived, or named after it), and its rows must be known to skip the replay
        found = list(files_under(self.watch_dirs(homes), ".jsonl"))
        for path in found:
            self._index(path)
        yield from found

    def wants(self, path: Path) -> bool:
        return path.suffix == ".jsonl" and bool({"sessions", "archived_sessions"} & set(path.parts))

    # -- reading -------------------------------------------------------------------------

    def read(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        bad = 0
        meta = self._index(path)
        session = meta.session or path.stem
        for _offset, line in appended_lines(path, state):
            if b'"turn_context"' in line:
                model = _turn_model(line)
                if model:
                    state["model"] = model
                continue
            if b'"token_count"' not in line:
                continue
            try:
                record = self._record(path, session, meta, state, json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                bad += 1
                continue
            if record is not None:
                records.append(record)
        return ReadResult(
            records, state, problem=f"skipped {bad} unreadable lines" if bad else None
        )

    def _record(
        self, path: Path, session: str, meta: _Meta, state: FileState, line: dict[str, Any]
    ) -> SourceRecord | None:
        payload = line.get("payload") or {}
        if line.get("type") != "event_msg" or payload.get("type") != "token_count":
            return None
        info = payload.get("info")
        if not isinstance(info, dict):
            return None  # rate-limit refreshes carry no usage
        timestamp = parse_ts(line["timestamp"])
        raw_total, raw_last = info.get("total_token_usage"), info.get("last_token_usage")
        total, last = _usage(raw_total), _usage(raw_last)
        if (raw_total is not None and total is None) or (raw_last is not None and last is None):
            raise ValueError("a token count is not a non-negative integer")
        model = payload.get("model") or info.get("model") or state.get("model") or FALLBACK_MODEL
        if total is None:
            if last is None:
                return None
            return _record(
                f"{session}:{line['timestamp']}:last:{last}", timestamp, str(model), last
            )
        previous = state.get("prev")
        if previous is not None and tuple(previous) == total:
            return None  # an unchanged total re-emitted (UI or rate-limit refresh)
        state["prev"] = list(total)
        if self._is_replay(path, meta, state, timestamp, total):
            return None
        base = tuple(previous) if previous is not None else (0, 0, 0, 0, 0)
        growth: Usage = tuple(max(0, t - b) for t, b in zip(total, base))
        if not any(growth[:3]):
            return None
        return _record(f"{session}:{line['timestamp']}:{total}", timestamp, str(model), growth)

    def _is_replay(
        self, path: Path, meta: _Meta, state: FileState, timestamp: datetime, total: Usage
    ) -> bool:
        """Whether this row of a fork or subagent repeats its parent's history."""
        if meta.parent is None or state.get("replay") == "done":
            return False
        parent_rows = self._parent_prefix(meta)
        if parent_rows is not None:
            index = int(state.get("replayed", 0))
            if index < len(parent_rows) and parent_rows[index] == total:
                state["replayed"] = index + 1
                return True
        else:
            ms = int(timestamp.timestamp() * 1000)
            anchor = state.get("burst_ms")
            if anchor is None and meta.started is not None:
                anchor = int(meta.started.timestamp() * 1000)
            if anchor is not None and 0 <= ms - int(anchor) <= BURST_MS:
                state["burst_ms"] = ms
                return True
        state["replay"] = "done"
        return False

    # -- sessions and parents ----------------------------------------------------------

    def _index(self, path: Path) -> _Meta:
        key = str(path)
        meta = self._meta.get(key)
        if meta is None:
            meta = _read_meta(path)
            if meta is None:  # the first line is still being written: look again next time
                return _Meta(None, None, None)
            self._meta[key] = meta
            if meta.session and (
                "archived_sessions" not in path.parts or meta.session not in self._by_session
            ):
                self._by_session[meta.session] = path  # the active copy wins over an archive
        return meta

    def _parent_prefix(self, meta: _Meta) -> list[Usage] | None:
        """The parent's totals up to the fork, or None if the parent's rollout is not here."""
        assert meta.parent is not None
        path = self._by_session.get(meta.parent)
        if path is None:
            return None
        try:
            size = path.stat().st_size
        except OSError:
            return None
        cached = self._parent_rows.get(meta.parent)
        if cached is None or cached[0] != size:
            cached = (size, list(_token_totals(path)))
            self._parent_rows[meta.parent] = cached
        prefix: list[Usage] = []
        for ts, usage in cached[1]:
            if meta.started is not None and ts > meta.started:
                break
            if not prefix or prefix[-1] != usage:  # re-emits are not replayed as rows
                prefix.append(usage)
        return prefix


def _record(key: str, timestamp: datetime, model: str, usage: Usage) -> SourceRecord:
    input_all, cached, output = usage[0], min(usage[1], usage[0]), usage[2]
    return SourceRecord(
        key=key,
        timestamp=timestamp,
        model=model,
        input_tokens=input_all - cached,
        output_tokens=output,
        cache_read_tokens=cached,
    )


def _turn_model(line: bytes) -> str | None:
    try:
        payload = json.loads(line).get("payload") or {}
    except (ValueError, AttributeError):
        return None
    for key in ("model", "model_name"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _read_meta(path: Path) -> _Meta | None:
    """The session id, its parent (fork or subagent spawn) and start, from the first line; None
    while that line is not complete."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return None
    if not first.endswith(b"\n"):
        return None
    try:
        line = json.loads(first)
    except ValueError:
        return _Meta(None, None, None)
    if not isinstance(line, dict) or line.get("type") != "session_meta":
        return _Meta(None, None, None)
    payload = line.get("payload") or {}
    source = payload.get("source")
    spawn = source.get("subagent", {}).get("thread_spawn", {}) if isinstance(source, dict) else {}
    parent = payload.get("forked_from_id") or (
        spawn.get("parent_thread_id") if isinstance(spawn, dict) else None
    )
    try:
        started = parse_ts(line["timestamp"])
    except (KeyError, ValueError, TypeError):
        started = None
    session = payload.get("id")
    return _Meta(
        session if isinstance(session, str) and session else None,
        parent if isinstance(parent, str) and parent else None,
        started,
    )


def _token_totals(path: Path) -> Iterator[tuple[datetime, Usage]]:
    try:
        with open(path, "rb") as f:
            for raw in f:
                if b'"token_count"' not in raw:
                    continue
                try:
                    line = json.loads(raw)
                    info = (line.get("payload") or {}).get("info")
                    total = (
                        _usage(info.get("total_token_usage")) if isinstance(info, dict) else None
                    )
                    if total is not None:
                        yield parse_ts(line["timestamp"]), total
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue
    except OSError:
        return
