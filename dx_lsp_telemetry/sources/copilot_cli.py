"""GitHub Copilot CLI: `session-state/<session>/events.jsonl` under `${COPILOT_HOME:-~/.copilot}`.

The CLI appends one JSON event per line. Each model call writes a `session.usage_record`
(`data.usage`: `model`, `inputTokens`, `outputTokens`, `cacheReadTokens`, `cacheWriteTokens`,
`reasoningTokens`, `apiCallId`, `accounting.usageId` and `accounting.sourceSessionId`): that is
one record. Seen in the real Copilot CLI 1.0.102 (tests/real/captures/copilot-cli): the input
includes the cache (1200 = 1000 uncached + 200 cache reads), so DX's input is `inputTokens` minus
cache reads and writes; the output includes the reasoning. Not counted: `session.shutdown`'s
`modelMetrics`, the session's running total (after a `--continue` it repeats the first run's
calls), `assistant.message`'s `outputTokens`, and any `session.usage_checkpoint`. `usage.cost` is
Copilot's request cost, not dollars: `spend.estimate` applies.

The key is the session (`accounting.sourceSessionId`, else the session's folder) and the call's id
(`accounting.usageId`, else `apiCallId`: the API's response id), which an OTLP export of the same
call carries as `gen_ai.conversation.id` and `gen_ai.response.id`. A session copied (a fork, an
old flat `session-state/<session>.jsonl`) repeats the same keys and counts once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, files_under
from dx_lsp_telemetry.sources.tail_select import chosen_lines, line_number

USAGE_RECORD = "session.usage_record"
_NEEDLE = b'"session.usage_record"'
STATE_DIRS = ("session-state", "history-session-state")
MAX_TEXT = 200
MAX_EXAMPLES = 3


class CopilotCli(Source):
    name: ClassVar[str] = "copilotCli"
    label: ClassVar[str] = "copilot-cli"
    watch_subdirs: ClassVar[tuple[str, ...]] = STATE_DIRS
    parallel_reads: ClassVar[bool] = True

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip() or env.get("COPILOT_HOME", "").strip()
        if text:
            path = Path(text).expanduser()
            return [path.parent if path.name in STATE_DIRS else path]
        return [Path(env.get("HOME") or env.get("USERPROFILE") or Path.home()) / ".copilot"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        # `<session>/events.jsonl`, and the older flat `<session>.jsonl`; not the checkpoints,
        # files and research folders a session keeps beside its events
        for path in files_under(self.watch_dirs(homes), ".jsonl"):
            if self.wants(path):
                yield path

    def wants(self, path: Path) -> bool:
        if path.suffix != ".jsonl":
            return False
        if path.parent.name in STATE_DIRS:
            return True
        return path.name == "events.jsonl" and path.parent.parent.name in STATE_DIRS

    def read(self, path: Path, state: FileState) -> ReadResult:
        session = path.parent.name if path.name == "events.jsonl" else path.stem
        records: list[SourceRecord] = []
        bad: list[tuple[int, str]] = []
        for offset, line in chosen_lines(path, state, _has_usage):
            try:
                record = _record(session, _decode(line))
            except (ValueError, TypeError, KeyError) as exc:
                bad.append((offset, str(exc)))
                continue
            if record is not None:
                records.append(record)
        problem = None
        if bad:
            shown = [f"line {line_number(path, o)}: {why}" for o, why in bad[:MAX_EXAMPLES]]
            more = "; ..." if len(bad) > MAX_EXAMPLES else ""
            problem = f"skipped {len(bad)} unreadable usage records ({'; '.join(shown)}{more})"
        return ReadResult(records, state, problem=problem)


def _has_usage(head: bytes) -> bool:
    """The CLI writes `type` first: a usage record says so in its first bytes."""
    return _NEEDLE in head


def _record(folder_session: str, event: Any) -> SourceRecord | None:
    if not isinstance(event, dict) or event.get("type") != USAGE_RECORD:
        return None  # the words in another event (a prompt, a tool's output)
    data = event.get("data")
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        raise ValueError("a usage record without its usage")
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        raise ValueError("a usage record without a timestamp")
    timestamp = parse_ts(stamp)
    accounting = usage.get("accounting")
    accounting = accounting if isinstance(accounting, dict) else {}
    session = _text(accounting.get("sourceSessionId")) or folder_session
    # without an id from the API: the event's own id, which a copy of the session repeats
    call = _text(accounting.get("usageId")) or _text(usage.get("apiCallId"))
    key = f"{session}:{call}" if call else f"{session}:event:{_text(event.get('id')) or stamp}"
    input_all = _count(usage, "inputTokens")
    cache_read = _count(usage, "cacheReadTokens")
    cache_write = _count(usage, "cacheWriteTokens")
    return SourceRecord(
        key=key,
        timestamp=timestamp,
        model=_text(usage.get("model")),
        input_tokens=max(0, input_all - cache_read - cache_write),
        output_tokens=_count(usage, "outputTokens"),
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
    )


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if type(value) is not int or value < 0:
        kind = "negative" if isinstance(value, (int, float)) and value < 0 else "not a whole number"
        raise ValueError(f"{name} is not a token count ({kind})")
    return int(value)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_TEXT]
    return None


def _decode(line: bytes) -> Any:
    """An event line; one torn by a crash and continued by the next event on the same line
    loses only the torn part."""
    try:
        return json.loads(line)
    except ValueError:
        pass
    start = line.find(b'{"type":', 1)
    while start > 0:
        try:
            return json.loads(line[start:])
        except ValueError:
            start = line.find(b'{"type":', start + 1)
    raise ValueError("not JSON")
