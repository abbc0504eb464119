"""Cline 4 (its CLI, SDK and the VS Code extension on them): `<sessions>/<sid>/<sid>.messages.json`.

The sessions folder is `$CLINE_SESSION_DATA_DIR`, else `$CLINE_DATA_DIR/sessions`, else
`${CLINE_DIR:-~/.cline}/data/sessions`. A session's messages file is rewritten whole (in place:
a read can catch it empty or half written, and is then retried) as `{"version": 1, "sessionId",
"messages": [...]}`; a subagent's or team task's `<agent>.messages.json` sits in its root
session's folder under the root's `sessionId`. An assistant message carries its turn's usage in
`metrics{inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, cost}`, `inputTokens`
including the cache: DX input = inputTokens - cacheReadTokens - cacheWriteTokens (at least 0).

One record per (sessionId, message `id`): a message repeated in a subagent's file, or a session
copied elsewhere, counts once. The checkpoint keeps what was counted per message, so a rewrite
adds only new or changed messages; a message that comes back under a new id with the same
time and counts (an id given afresh on a rewrite) is the same message. Only counts, the model,
the ids and the time are used: never the conversation, the system prompt or the paths.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources import counts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord
from dx_lsp_telemetry.sources.whole_json import WholeJson

SUFFIX = ".messages.json"
VERSION = 1
#: the legacy extension's global-storage folder: watched by the task reader, not this one
LEGACY_STORAGE = "saoudrizwan.claude-dev"
RACY_NS = 2_000_000_000

#: what a message counted: [input, output, cache writes, cache reads, cost or None, time in ms]
Usage = list[Any]


def sessions_dir(env: Mapping[str, str]) -> Path:
    explicit = env.get("CLINE_SESSION_DATA_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    data = env.get("CLINE_DATA_DIR", "").strip()
    if data:
        return Path(data).expanduser() / "sessions"
    base = env.get("CLINE_DIR", "").strip()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    return (Path(base).expanduser() if base else home / ".cline") / "data" / "sessions"


class ClineSessions(Source):
    """Cline 4's session store: part of the `cline` source, beside the legacy tasks."""

    name: ClassVar[str] = "cline"
    label: ClassVar[str] = "cline"

    def __init__(self) -> None:
        #: files whose last read failed to parse, by signature: reported when it persists
        self._whole = WholeJson("a rewrite cut short?")

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        """The configured folder (a sessions folder, or `~/.cline` holding `data/sessions`),
        else the sessions folder Cline 4 uses."""
        if not configured.strip():
            return [sessions_dir(env)]
        path = Path(configured.strip()).expanduser()
        return [path] + [d for d in (path / "data" / "sessions", path / "sessions") if d.is_dir()]

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return [h for h in homes if h.name != LEGACY_STORAGE and not (h / "tasks").is_dir()]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[str] = set()
        for home in homes:
            try:
                folders = sorted(home.iterdir())
            except OSError:
                continue
            for folder in folders:
                try:
                    if folder.is_symlink() or not folder.is_dir():
                        continue
                    names = sorted(n for n in os.listdir(folder) if n.endswith(SUFFIX))
                except OSError:
                    continue
                for name in names:
                    path = folder / name
                    real = os.path.realpath(path)
                    if real not in seen and path.is_file():
                        seen.add(real)
                        yield path

    def wants(self, path: Path) -> bool:
        return path.name.endswith(SUFFIX) and len(path.name) > len(SUFFIX)

    def read(self, path: Path, state: FileState) -> ReadResult:
        loaded = self._whole.read(
            path,
            state,
            [*state.get("identity", []), state.get("size"), state.get("mtime")],
            missing_retries=False,
        )
        if isinstance(loaded, ReadResult):
            return loaded
        doc, signature = loaded
        rows: dict[str, Usage] = dict(state.get("rows") or {})
        racy = time.time_ns() - signature[3] < RACY_NS
        new_state: FileState = {
            "identity": signature[:2],
            "size": signature[2],
            "mtime": None if racy else signature[3],
            "rows": rows,
        }
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            return ReadResult([], new_state, problem="not a Cline messages file (no messages)")
        if doc.get("version") != VERSION:
            shown = doc.get("version")
            return ReadResult(
                [], new_state, problem=f"messages file version {shown!r}: this version reads 1"
            )
        session = doc.get("sessionId")
        if not isinstance(session, str) or not session.strip():
            session = path.parent.name
        fallback_ms = int(signature[3] // 1_000_000)
        records, bad = _records(session, doc["messages"], rows, fallback_ms)
        problem = f"skipped {bad} unreadable assistant messages" if bad else None
        return ReadResult(records, new_state, problem=problem)


def _records(
    session: str, messages: list[Any], rows: dict[str, Usage], fallback_ms: int
) -> tuple[list[SourceRecord], int]:
    present = {m["id"] for m in messages if isinstance(m, dict) and isinstance(m.get("id"), str)}
    records: list[SourceRecord] = []
    bad = 0
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        metrics = message.get("metrics")
        if metrics is None:
            continue
        try:
            record = _record(session, message, metrics, rows, present, fallback_ms)
        except (ValueError, TypeError, KeyError, OverflowError):
            bad += 1
            continue
        if record is not None:
            records.append(record)
    return records, bad


def _record(
    session: str,
    message: dict[str, Any],
    metrics: Any,
    rows: dict[str, Usage],
    present: set[str],
    fallback_ms: int,
) -> SourceRecord | None:
    if not isinstance(metrics, dict):
        raise TypeError("metrics is not an object")
    tokens_in, output, cache_read, cache_write = (
        counts.count(metrics.get(name))
        for name in ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")
    )
    cost = counts.cost(metrics.get("cost"))
    if not (tokens_in or output or cache_read or cache_write):
        return None
    message_id = message.get("id")
    ts_ms = _ms(message.get("ts"), fallback_ms)
    if not isinstance(message_id, str) or not message_id.strip():
        message_id = f"ts:{ts_ms}"  # an id-less message: its time is what it has
    usage: Usage = [max(0, tokens_in - cache_read - cache_write), output, cache_write]
    usage += [cache_read, cost]
    old = rows.get(message_id)
    if old is not None and old[:5] == usage:
        return None  # counted with these values already
    if old is None:
        renamed = next(
            (k for k, v in rows.items() if k not in present and v[:5] == usage and v[5] == ts_ms),
            None,
        )
        if renamed is not None:  # the same message under a new id: keep its count
            rows[message_id] = rows.pop(renamed)
            return None
    else:
        ts_ms = old[5]  # the same message grown: the same time
    rows[message_id] = [*usage, ts_ms]
    model_info = message.get("modelInfo")
    return SourceRecord(
        key=f"cline-session:{session}:{message_id}",
        timestamp=counts.from_ms(ts_ms),
        model=counts.model(model_info.get("id") if isinstance(model_info, dict) else None),
        input_tokens=usage[0],
        output_tokens=output,
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        cost_usd=cost,
    )


def _ms(value: Any, fallback: int) -> int:
    """A message's time in ms: a number, or an ISO text; none: the file's time when first read."""
    if value is None:
        return fallback
    if isinstance(value, str):
        return int(parse_ts(value).timestamp() * 1000)
    moment: datetime = counts.from_ms(value)  # refuses what is not a time
    return int(moment.timestamp() * 1000)
