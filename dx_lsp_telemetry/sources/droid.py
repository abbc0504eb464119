"""Factory Droid: `sessions/**/<session>.settings.json` under `${FACTORY_DIR:-~/.factory}`.

Droid keeps one running total per session in the session's settings file, rewritten in place
after every call: `tokenUsage{inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens,
thinkingTokens}` (Anthropic-style disjoint buckets; thinking is output), with `model` and
`providerLockTimestamp` (when the provider was chosen: the session's start, not the time of its
tokens). The transcript beside it (`<session>.jsonl`) holds no counts and is never read.

Totals become events by `running` (growth only, dated when it happened, one event per session and
quarter hour). The file's modification time is the time of the last change (floored at the
provider lock); the session id is the file's name, so a session moved or copied to another
folder is the same session. A file caught half-written is read again shortly, without touching
the checkpoint; one unreadable twice unchanged is reported.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources.base import FileState, ReadResult, files_under
from dx_lsp_telemetry.sources.running import Snapshot
from dx_lsp_telemetry.sources.running_source import RunningTotalSource
from dx_lsp_telemetry.sources.tail import identity
from dx_lsp_telemetry.sources.values import model_name, token_count, tool_time

SUFFIX = ".settings.json"
MAX_BYTES = 16 << 20  # a settings file is a few hundred bytes
RACY_NS = 2_000_000_000


class Droid(RunningTotalSource):
    name: ClassVar[str] = "droid"
    label: ClassVar[str] = "droid"
    watch_subdirs: ClassVar[tuple[str, ...]] = ("sessions",)
    debounce_seconds: ClassVar[float] = 0.5

    def __init__(self) -> None:
        super().__init__()
        self._failed: dict[str, list[int]] = {}

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip() or env.get("FACTORY_DIR", "").strip()
        if text:
            path = Path(text).expanduser()
            return [path.parent if path.name == "sessions" else path]
        home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
        return [home / ".factory"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        return files_under(self.watch_dirs(homes), SUFFIX)

    def wants(self, path: Path) -> bool:
        return path.name.endswith(SUFFIX) and "sessions" in path.parts

    def read(self, path: Path, state: FileState) -> ReadResult:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # between a rewrite's unlink and rename
            return ReadResult([], state, retry=True)
        try:
            before = os.fstat(fd)
            sig = [*identity(before), before.st_size, before.st_mtime_ns]
            if sig == state.get("sig"):
                return ReadResult([], state)
            data = os.read(fd, MAX_BYTES + 1)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if [*identity(after), after.st_size, after.st_mtime_ns] != sig:
            return ReadResult([], state, retry=True)  # written to while read
        key = str(path)
        try:
            if len(data) > MAX_BYTES:
                raise ValueError("larger than a settings file can be")
            settings = json.loads(data)
        except ValueError:  # empty or cut short: a rewrite in progress, most likely
            again = self._failed.get(key) == sig
            self._failed[key] = sig
            cut = "not valid JSON (a write cut short?); read again when it changes"
            return ReadResult([], state, retry=True, problem=cut if again else None)
        self._failed.pop(key, None)
        racy = time.time_ns() - sig[3] < RACY_NS
        sessions = dict(state.get("sessions") or {})
        new_state: FileState = {"sig": None if racy else sig, "sessions": sessions}
        try:
            snap = _snapshot(path.name[: -len(SUFFIX)], settings, sig[3])
        except (ValueError, TypeError) as exc:
            return ReadResult([], new_state, problem=f"unreadable token usage: {exc}")
        if snap is None:
            return ReadResult([], new_state)
        outcome = self._totals.take(sessions, [snap])
        problem = "the session's total went down (reset?): nothing subtracted"
        return ReadResult(outcome.records, new_state, problem=problem if outcome.resets else None)


def _snapshot(session: str, settings: Any, mtime_ns: int) -> Snapshot | None:
    if not isinstance(settings, dict):
        raise TypeError("not a JSON object")
    usage = settings.get("tokenUsage")
    if usage is None:
        return None  # a session before its first call
    if not isinstance(usage, dict):
        raise TypeError("tokenUsage is not an object")
    lock = tool_time(settings.get("providerLockTimestamp"))
    changed = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
    if lock is not None and changed < lock:
        changed = lock
    return Snapshot(
        session=session,
        usage=(
            token_count(usage.get("inputTokens")),
            token_count(usage.get("outputTokens")) + token_count(usage.get("thinkingTokens")),
            token_count(usage.get("cacheCreationTokens")),
            token_count(usage.get("cacheReadTokens")),
        ),
        cost=None,
        model=model_name(settings.get("model")),
        updated=changed,
        created=lock,
    )
