"""Aider: its analytics log, the JSON-lines file named by `--analytics-log` (opt-in).

Aider appends one line per analytics event, `{"event", "properties", "user_id", "time"}` (time in
epoch seconds). After each reply, `message_send` holds that message's `prompt_tokens`,
`completion_tokens`, `cost` (USD, Aider's own price, which does count the cache) and the
session's running `total_cost`: an event log, one record per line, not a running total. Aider
writes no cache split there (measured with the real Aider 0.86.2: the API's 200 cached of 1200
prompt tokens appear as `prompt_tokens: 1200`), so the whole prompt is DX's input; the cost is
Aider's. A model Aider does not know is logged as `…/REDACTED`: no model then. Streamed replies
log Aider's own estimate of the tokens (as Aider shows them), not the API's count.

The source's `path` is the log file itself; without one, `$AIDER_ANALYTICS_LOG`, else
`~/.aider/analytics.jsonl`. Lines are read as appended (`tail`). A line has no id: its key is its
time and its numbers (`total_cost` grows within a session), with a count for identical lines in
the same second, so a copy of the log elsewhere is the same records. Never stored: the user id,
the edit format, anything but the counts, the cost, the model and the time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord
from dx_lsp_telemetry.sources.tail import appended_lines_containing
from dx_lsp_telemetry.sources.values import cost_usd, model_name, token_count

EVENT = "message_send"
DEFAULT = Path(".aider") / "analytics.jsonl"


class Aider(Source):
    name: ClassVar[str] = "aider"
    label: ClassVar[str] = "aider"

    def __init__(self) -> None:
        #: the log files this source was pointed at (only they are read when hinted)
        self._logs: set[Path] = set()

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip() or env.get("AIDER_ANALYTICS_LOG", "").strip()
        if text:
            return [Path(text).expanduser().absolute()]
        return [Path(env.get("HOME") or env.get("USERPROFILE") or Path.home()) / DEFAULT]

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return [h.parent for h in homes]

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """Aider's own folder, whole."""
        homes = list(homes)
        self._logs.update(homes)
        return [h.parent for h in homes if h.parent.name == ".aider" and h.parent.is_dir()]

    def flat_watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """A log kept elsewhere (a home folder, a project): its folder without subfolders."""
        homes = list(homes)
        self._logs.update(homes)
        return [h.parent for h in homes if h.parent.name != ".aider" and h.parent.is_dir()]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        for home in homes:
            self._logs.add(home)
            if home.is_file():
                yield home

    def wants(self, path: Path) -> bool:
        return path in self._logs

    def read(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        bad: list[str] = []
        # identical lines within one second: the second is another message. Taken up once
        # the tail has checked the file (a replaced file is read from 0 with a fresh count)
        second: Any = None
        seen: dict[str, int] = {}
        started = False
        for offset, line in appended_lines_containing(path, state, b'"message_send"'):
            if not started:
                started = True
                second, seen = state.get("second"), dict(state.get("seen") or {})
            try:
                found = _record(json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                bad.append(f"byte {offset}: {exc}")
                continue
            if found is None:
                continue
            when, key, record = found
            if when != second:
                second, seen = when, {}
            n = seen[key] = seen.get(key, 0) + 1
            records.append(record._replace(key=f"{key}:{n}"))
        if started:
            state["second"], state["seen"] = second, seen
        problem = f"skipped {len(bad)} unreadable message lines ({bad[0][:200]})" if bad else None
        return ReadResult(records, state, problem=problem)


def _record(line: Any) -> tuple[int, str, SourceRecord] | None:
    if not isinstance(line, dict):
        raise TypeError("not a JSON object")
    if line.get("event") != EVENT:
        return None  # message_send_starting, or the name in some text
    props = line.get("properties")
    if not isinstance(props, dict):
        raise TypeError("properties is not an object")
    when = line.get("time")
    if isinstance(when, float) and when.is_integer():
        when = int(when)
    if isinstance(when, bool) or not isinstance(when, int) or when <= 0:
        raise ValueError(f"no time: {str(when)[:40]!r}")
    prompt = token_count(props.get("prompt_tokens"))
    completion = token_count(props.get("completion_tokens"))
    cost, total = cost_usd(props.get("cost")), cost_usd(props.get("total_cost"))
    model = model_name(props.get("main_model"))
    if model is not None and model.endswith("REDACTED"):
        model = None
    key = f"{when}:{prompt}:{completion}:{cost!r}:{total!r}:{model}"
    record = SourceRecord(
        key=key,
        timestamp=datetime.fromtimestamp(when, tz=timezone.utc),
        model=model,
        input_tokens=prompt,
        output_tokens=completion,
        cost_usd=cost,
    )
    return when, key, record
