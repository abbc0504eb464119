"""Claude Code: `projects/**/*.jsonl` transcripts under `~/.claude`, `~/.config/claude` or
`CLAUDE_CONFIG_DIR`.

One API response is written as several lines (content blocks, streaming snapshots) and copied
into resumed sessions, so a record's key is `message.id` + `requestId`: the copy with the larger
token total wins in the ledger. A `/btw` side question replays earlier responses of its session
with the same `message.id` and a new `requestId` (`isSidechain: true`): the non-sidechain copy
wins and the replay never counts. Sidechain copies of a response the session does not have (its
own side answers) are one record per session and `message.id`, whichever run reads them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, files_under
from dx_lsp_telemetry.sources.tail import appended_lines

_USAGE = b'"usage"'
SESSION_CACHE = 64


def _json_loader() -> Callable[[bytes], Any]:
    """json.loads, or pydantic-core's parser where installed (with genai-prices): about twice as
    fast on Claude Code's lines. A line it refuses goes to json.loads, so what is accepted, and
    how, stays json.loads' (they differ only on lines such as lone surrogates, which it refuses).
    """
    try:
        from pydantic_core import from_json
    except ImportError:  # the pure-Python bundle of the VS Code extension
        return json.loads

    def loads(line: bytes) -> Any:
        try:
            return from_json(line, cache_strings="keys")
        except ValueError:
            return json.loads(line)

    return loads


_loads = _json_loader()


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _token(usage: dict[str, Any], key: str) -> int | None:
    """`_count(usage.get(key, 0) or 0)`, with a shortcut for the usual plain integer."""
    value = usage.get(key, 0) or 0
    if type(value) is int and value >= 0:
        return value
    return _count(value)


class ClaudeCode(Source):
    name: ClassVar[str] = "claudeCode"
    label: ClassVar[str] = "claude-code"

    def __init__(self) -> None:
        #: recently used sessions' own message ids (bounded memory)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        #: the sessions already looked up by the current `read` (one look-up per file, not line)
        self._in_read: dict[str, _Session] = {}

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured:
            candidates = [configured]
        elif env.get("CLAUDE_CONFIG_DIR", "").strip():
            candidates = [p.strip() for p in env["CLAUDE_CONFIG_DIR"].split(",") if p.strip()]
        else:
            home = Path(env.get("HOME") or Path.home())
            xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
            candidates = [str(Path(xdg) / "claude"), str(home / ".claude")]
        homes: list[Path] = []
        for text in candidates:
            path = Path(text).expanduser()
            if path.name == "projects":
                path = path.parent
            if path not in homes:
                homes.append(path)
        return homes

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return [h / "projects" for h in homes if (h / "projects").is_dir()]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        return files_under(self.watch_dirs(homes), ".jsonl")

    def wants(self, path: Path) -> bool:
        return path.suffix == ".jsonl" and "projects" in path.parts

    def read(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        bad = 0
        self._in_read = {}
        for offset, line in appended_lines(path, state):
            if _USAGE not in line:
                continue
            try:
                record = self._record(path, offset, _loads(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                bad += 1
                continue
            if record is not None:
                records.append(record)
        problem = f"skipped {bad} unreadable lines" if bad else None
        return ReadResult(records, state, problem=problem)

    def _record(self, path: Path, offset: int, line: dict[str, Any]) -> SourceRecord | None:
        message = line.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            return None
        usage = message["usage"]
        input_tokens = _token(usage, "input_tokens")
        output_tokens = _token(usage, "output_tokens")
        cache_read = _token(usage, "cache_read_input_tokens")
        cache_writes = _cache_write(usage)
        if input_tokens is None or output_tokens is None or cache_read is None:
            raise ValueError("a token count is not a non-negative integer")
        if cache_writes is None:
            raise ValueError("a token count is not a non-negative integer")
        cache_write, cache_write_1h = cache_writes
        timestamp = parse_ts(line["timestamp"])
        session = str(line.get("sessionId") or path.stem)
        message_id = message.get("id") if isinstance(message.get("id"), str) else None
        request_id = line.get("requestId") if isinstance(line.get("requestId"), str) else None
        key = self._key(
            path, offset, session, message_id, request_id, sidechain=line.get("isSidechain") is True
        )
        if key is None:
            return None
        model = message.get("model") if isinstance(message.get("model"), str) else None
        cost = line.get("costUSD")
        return SourceRecord(
            key=key,
            timestamp=timestamp,
            model=None if model in (None, "", "<synthetic>") else model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_write_tokens=cache_write,
            cache_read_tokens=cache_read,
            cache_write_1h_tokens=cache_write_1h,
            cost_usd=float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0
            else None,
        )

    def _key(
        self,
        path: Path,
        offset: int,
        session: str,
        message_id: str | None,
        request_id: str | None,
        *,
        sidechain: bool,
    ) -> str | None:
        """The record's identity, or None for a sidechain replay of a counted response."""
        if message_id is None:  # nothing to match copies on: this line is its own record
            return f"line:{session}:{path.name}:{offset}"
        exact = f"msg:{message_id}:{request_id}" if request_id else f"msg:{session}:{message_id}"
        if not sidechain:
            return exact
        known = self._in_read.get(session)
        if known is None:
            known = self._in_read[session] = self._session(path, session)
        if message_id in known.own_ids:
            return None  # a replay of a response its session already counted
        # a side answer; a later sidechain may copy it with a new requestId: one record, the
        # larger wins (the key must not depend on which copy this process happened to see first)
        return f"side:{session}:{message_id}"

    def _session(self, path: Path, session: str) -> _Session:
        """The session's own message ids, read from its main transcript (kept up to date)."""
        mains = _main_transcripts(path, session)
        signature = [(str(m), m.stat().st_size) for m in mains if m.exists()]
        cached = self._sessions.get(session)
        if cached is None or cached.signature != signature:
            ids = {i for main in mains for i in _own_message_ids(main)}
            cached = _Session(signature, ids)
            self._sessions[session] = cached
        self._sessions.move_to_end(session)
        while len(self._sessions) > SESSION_CACHE:
            self._sessions.popitem(last=False)
        return cached


@dataclass
class _Session:
    signature: list[tuple[str, int]]
    own_ids: set[str]


def _cache_write(usage: dict[str, Any]) -> tuple[int, int] | None:
    """Cache writes and the 1-hour part of them: the `cache_creation` split (5 min + 1 h) when
    given, else the total field (all taken as 5-minute writes)."""
    split = usage.get("cache_creation")
    if isinstance(split, dict) and split:
        five = _token(split, "ephemeral_5m_input_tokens")
        hour = _token(split, "ephemeral_1h_input_tokens")
        if five is None or hour is None:
            return None
        return five + hour, hour
    total = _token(usage, "cache_creation_input_tokens")
    return None if total is None else (total, 0)


def _main_transcripts(path: Path, session: str) -> list[Path]:
    """`<project>/<session>.jsonl` for a file in `<project>/<session>/subagents/`."""
    found = []
    for parent in (path.parent, *path.parents):
        candidate = parent / f"{session}.jsonl"
        if candidate != path and candidate.is_file():
            found.append(candidate)
            break
        if parent.name == "projects":
            break
    return found


def _own_message_ids(path: Path) -> Iterator[str]:
    try:
        with open(path, "rb") as f:
            for line in f:
                if _USAGE not in line or b'"isSidechain":true' in line:
                    continue
                try:
                    message = _loads(line).get("message") or {}
                except (ValueError, AttributeError):
                    continue
                if isinstance(message.get("id"), str):
                    yield message["id"]
    except OSError:
        return
