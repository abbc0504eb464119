"""JetBrains Junie: `sessions/<session>/events.jsonl` under `~/.junie`, an event log.

Junie appends one JSON line per agent event. A model response's line has
`event.agentEvent.kind: "LlmResponseMetadataEvent"`, `timestampMs` (when the response ended) and
`event.agentEvent.modelUsage[]`, one entry per model call: `model`, `inputTokens`,
`outputTokens`, `cacheInputTokens` (reads), `cacheCreateTokens` (writes), `cost`. Not a running
total: each entry is one record. Whether `inputTokens` includes the cache is not documented; the
buckets are taken as disjoint (Anthropic's style, which the names follow).

Junie may write the same event twice: a record's key is the session (its folder's name, Junie's
session id), `timestampMs`, the entry's place in `modelUsage`, its model and its counts, so a
replayed event is the same record, and so is the same session copied to another folder. Lines
are read as appended (`tail`); only lines naming the usage event are parsed. Never read: the
prompts, the plans, the agent's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources.base import (
    FileState,
    ReadResult,
    Source,
    SourceRecord,
    files_under,
)
from dx_lsp_telemetry.sources.tail import appended_lines_containing
from dx_lsp_telemetry.sources.values import cost_usd, model_name, token_count

FILE_NAME = "events.jsonl"
KIND = "LlmResponseMetadataEvent"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Junie(Source):
    name: ClassVar[str] = "junie"
    label: ClassVar[str] = "junie"
    watch_subdirs: ClassVar[tuple[str, ...]] = ("sessions",)
    parallel_reads: ClassVar[bool] = True

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured.strip():
            path = Path(configured.strip()).expanduser()
            return [path.parent if path.name == "sessions" else path]
        home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
        return [home / ".junie"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        return (p for p in files_under(self.watch_dirs(homes), FILE_NAME) if p.name == FILE_NAME)

    def wants(self, path: Path) -> bool:
        return path.name == FILE_NAME and path.parent.parent.name == "sessions"

    def read(self, path: Path, state: FileState) -> ReadResult:
        session = path.parent.name
        records: list[SourceRecord] = []
        bad: list[str] = []
        for offset, line in appended_lines_containing(path, state, KIND.encode()):
            try:
                records += _records(session, json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                bad.append(f"byte {offset}: {exc}")
        problem = f"skipped {len(bad)} unreadable usage lines ({bad[0][:200]})" if bad else None
        return ReadResult(records, state, problem=problem)


def _records(session: str, line: Any) -> list[SourceRecord]:
    if not isinstance(line, dict):
        raise TypeError("not a JSON object")
    event = (line.get("event") or {}).get("agentEvent")
    if not isinstance(event, dict) or event.get("kind") != KIND:
        return []  # the kind named in some text
    stamp = line.get("timestampMs")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp <= 0:
        raise ValueError(f"no timestampMs: {str(stamp)[:40]!r}")
    usages = event.get("modelUsage") or []
    if not isinstance(usages, list):
        raise TypeError("modelUsage is not a list")
    when = _EPOCH + timedelta(milliseconds=stamp)
    out = []
    for index, usage in enumerate(usages):
        if not isinstance(usage, dict):
            raise TypeError("a modelUsage entry is not an object")
        counts = (
            token_count(usage.get("inputTokens")),
            token_count(usage.get("outputTokens")),
            token_count(usage.get("cacheCreateTokens")),
            token_count(usage.get("cacheInputTokens")),
        )
        model = model_name(usage.get("model"))
        out.append(
            SourceRecord(
                key=f"{session}:{stamp}:{index}:{model}:{counts}",
                timestamp=when,
                model=model,
                input_tokens=counts[0],
                output_tokens=counts[1],
                cache_write_tokens=counts[2],
                cache_read_tokens=counts[3],
                cost_usd=cost_usd(usage.get("cost")),
            )
        )
    return out
