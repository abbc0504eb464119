"""Claude Code: `projects/**/*.jsonl` transcripts under `~/.claude`, `~/.config/claude` or
`CLAUDE_CONFIG_DIR`.

One API response is written as several lines (content blocks, streaming snapshots) and copied
into resumed sessions, so a record's key is its `requestId` (the OTLP events' `request_id`: both
channels give a request one id; records counted before under an earlier version's key keep
that key, see `claude_keys`): the copy with the larger token total wins in the ledger.
Subagents' requests (their transcripts in `<session>/subagents/agent-*.jsonl`, or in the
session's own in older versions; `isSidechain: true`) are keyed by their `requestId` too.
A sidechain also copies responses of its session: a fork its parent's last one (with its
request id), a `/btw` side question earlier ones under a new `requestId`. A sidechain copy of a
response the session has (same `message.id`) never counts: the session's own line does.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources import claude_keys
from dx_lsp_telemetry.sources.base import (
    FileState,
    HeldIds,
    ReadResult,
    Source,
    SourceRecord,
    files_under,
)
from dx_lsp_telemetry.sources.tail import CHUNK, appended_lines_containing

_USAGE = b'"usage"'
_SIDECHAIN = b'"isSidechain":true'
SESSION_CACHE = 64


#: the standard parser: what users run (the bundle is pure Python), what benchmarks measure
_loads = json.loads


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
    watch_subdirs: ClassVar[tuple[str, ...]] = ("projects",)
    #: the session caches only spare re-reading main transcripts: a file's records are the same
    parallel_reads: ClassVar[bool] = True

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

    def legacy_ids(self, ledger_dir: Path) -> HeldIds | None:
        try:
            if not claude_keys.key_epoch(ledger_dir.parent / "sources").legacy:
                return None
        except OSError:  # an unusable data folder (named in status): nothing is written
            return None
        return claude_keys.LegacyIds(ledger_dir).held

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        return files_under(self.watch_dirs(homes), ".jsonl")

    def wants(self, path: Path) -> bool:
        return path.suffix == ".jsonl" and "projects" in path.parts

    def read(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        bad = 0
        self._in_read = {}
        # a session's main transcript read from the start, with subagents' transcripts next to
        # it: its own message ids come along (what `_session` would read it again for)
        own: set[str] | None = None
        if not state.get("offset") and (path.parent / path.stem).is_dir():
            own = set()
        record_of, loads, append = self._record, _loads, records.append
        for offset, line in appended_lines_containing(path, state, _USAGE):
            try:
                data = loads(line)
            except (ValueError, TypeError, KeyError, AttributeError):
                bad += 1
                continue
            if own is not None and _SIDECHAIN not in line:
                # as `_own_message_ids` takes it (which fails on a message that is not an object)
                message = (data.get("message") or {}) if type(data) is dict else {}
                if type(message) is not dict:
                    own = None
                elif isinstance(message_id := message.get("id"), str):
                    own.add(message_id)
            try:
                record = record_of(path, offset, data)
            except (ValueError, TypeError, KeyError, AttributeError):
                bad += 1
                continue
            if record is not None:
                append(record)
        if own is not None and state.get("offset") == state.get("size"):  # read whole
            self._remember(path.stem, _Session([(str(path), state["size"])], own))
        problem = f"skipped {bad} unreadable lines" if bad else None
        return ReadResult(records, state, problem=problem)

    def _record(self, path: Path, offset: int, line: dict[str, Any]) -> SourceRecord | None:
        message = line.get("message")
        if not isinstance(message, dict):
            return None
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return None
        # `_token` inlined for the usual plain integers (about 100k lines per 200 MB)
        input_tokens = usage.get("input_tokens") or 0
        if type(input_tokens) is not int or input_tokens < 0:
            input_tokens = _token(usage, "input_tokens")
        output_tokens = usage.get("output_tokens") or 0
        if type(output_tokens) is not int or output_tokens < 0:
            output_tokens = _token(usage, "output_tokens")
        cache_read = usage.get("cache_read_input_tokens") or 0
        if type(cache_read) is not int or cache_read < 0:
            cache_read = _token(usage, "cache_read_input_tokens")
        if input_tokens is None or output_tokens is None or cache_read is None:
            raise ValueError("a token count is not a non-negative integer")
        split = usage.get("cache_creation")
        if (
            type(split) is dict
            and type(five := split.get("ephemeral_5m_input_tokens")) is int
            and five >= 0
            and type(cache_write_1h := split.get("ephemeral_1h_input_tokens")) is int
            and cache_write_1h >= 0
        ):
            cache_write = five + cache_write_1h  # `_cache_write`'s usual answer
        else:
            cache_writes = _cache_write(usage)
            if cache_writes is None:
                raise ValueError("a token count is not a non-negative integer")
            cache_write, cache_write_1h = cache_writes
        # a split short of the total: Claude Code writes a zero split when the API (a gateway,
        # a proxy) sent only the total. The total was written; what the split leaves out is
        # taken as 5-minute writes (the 1-hour part stays as the split says)
        total = usage.get("cache_creation_input_tokens")
        if type(total) is int and total > cache_write:
            cache_write = total
        timestamp = _timestamp(line["timestamp"])
        message_id = message.get("id")
        if not isinstance(message_id, str):
            message_id = None
        request_id = line.get("requestId")
        if not isinstance(request_id, str):
            request_id = None
        sidechain = line.get("isSidechain") is True
        legacy = None
        if message_id is not None and request_id and not sidechain:
            # one request, one id on every channel (OTLP's request_id); before: message and
            # request id, kept where the ledger has it (`claude_keys`)
            key = f"req:{request_id}"  # claude_keys.request_key, without the call
            legacy = f"msg:{message_id}:{request_id}"
        else:
            session = str(line.get("sessionId") or path.stem)
            found = self._key(path, offset, session, message_id, request_id, sidechain=sidechain)
            if found is None:
                return None
            key = found
            if sidechain and request_id and message_id is not None:
                # a subagent's (or side question's) own request: its id, as OTLP's; before:
                # one record per session and message (`claude_keys.side_key`), kept likewise
                key, legacy = claude_keys.request_key(request_id), key
        model = message.get("model")
        if not isinstance(model, str) or model in ("", "<synthetic>"):
            model = None
        cost = line.get("costUSD")
        return SourceRecord(
            key,
            timestamp,
            model,
            input_tokens,
            output_tokens,
            cache_write,
            cache_read,
            float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0
            else None,
            cache_write_1h,
            legacy,
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
        return claude_keys.side_key(session, message_id)  # what earlier versions called it

    def _session(self, path: Path, session: str) -> _Session:
        """The session's own message ids, read from its main transcript (kept up to date)."""
        mains = _main_transcripts(path, session)
        signature = [(str(m), m.stat().st_size) for m in mains if m.exists()]
        cached = self._sessions.get(session)
        if cached is None or cached.signature != signature:
            ids = {i for main in mains for i in _own_message_ids(main)}
            cached = _Session(signature, ids)
        self._remember(session, cached)
        return cached

    def _remember(self, session: str, known: _Session) -> None:
        self._sessions[session] = known
        self._sessions.move_to_end(session)
        while len(self._sessions) > SESSION_CACHE:
            self._sessions.popitem(last=False)


@dataclass
class _Session:
    signature: list[tuple[str, int]]
    own_ids: set[str]


def _timestamp(text: Any) -> datetime:
    """`parse_ts`, with a shortcut for the usual `2026-01-15T09:30:00.123Z` (JavaScript's
    toISOString): Python 3.11's fromisoformat reads that form to the same value, about 20 times
    faster. Anything else, or a value it refuses, goes to `parse_ts` (which explains the error).
    """
    if (
        type(text) is str
        and len(text) == 24
        and text[23] == "Z"
        and text[19] == "."
        and text[16] == ":"
        and text[13] == ":"
        and text[10] == "T"
        and text[7] == "-"
        and text[4] == "-"
    ):
        try:
            parsed = _fromisoformat(text)  # 3.10 refuses the `Z`: parse_ts
        except ValueError:
            return parse_ts(text)
        if parsed.tzinfo is timezone.utc:
            return parsed
    return parse_ts(text)


_fromisoformat = datetime.fromisoformat


def _cache_write(usage: dict[str, Any]) -> tuple[int, int] | None:
    """Cache writes and the 1-hour part of them: the `cache_creation` split (5 min + 1 h) when
    given, else the total field (all taken as 5-minute writes). `_record` then raises the
    writes to the total field where the split says less."""
    split = usage.get("cache_creation")
    if isinstance(split, dict) and split:
        five = split.get("ephemeral_5m_input_tokens") or 0
        if type(five) is not int or five < 0:
            five = _token(split, "ephemeral_5m_input_tokens")
        hour = split.get("ephemeral_1h_input_tokens") or 0
        if type(hour) is not int or hour < 0:
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
            for line in _lines_with(f, _USAGE):
                if _SIDECHAIN in line:
                    continue
                try:
                    message = _loads(line).get("message") or {}
                except (ValueError, AttributeError):
                    continue
                if isinstance(message.get("id"), str):
                    yield message["id"]
    except OSError:
        return


def _lines_with(f: BinaryIO, needle: bytes) -> Iterator[bytes]:
    """The lines of `f` that contain `needle` (`line for line in f if needle in line`, without
    the newline, an unterminated last line included), without cutting out the others."""
    buf = b""
    while chunk := f.read(CHUNK):
        buf = buf + chunk if buf else chunk
        end = buf.rfind(b"\n") + 1
        hit = buf.find(needle, 0, end)
        while hit >= 0:
            start = buf.rfind(b"\n", 0, hit) + 1
            nl = buf.index(b"\n", hit)
            yield buf[start:nl]
            hit = buf.find(needle, nl + 1, end)
        buf = buf[end:]
    if needle in buf:
        yield buf
