"""Cline, Roo Code and Kilo Code: `tasks/<task>/ui_messages.json` in the extension's global storage.

The three extensions share one format. `ui_messages.json` is a JSON array of the chat's messages,
rewritten whole on every change: Cline before 3.40 truncates and writes it in place, later Cline
writes a temporary file and renames it over; Roo Code (and the Roo-derived Kilo Code) takes a
`<file>.lock` folder, writes `.<name>.new_*.tmp`, renames the old file to `.<name>.bak_*.tmp`,
renames the new one in and deletes the backup, so the file is briefly missing. A read that finds
the file missing, half written or changing is retried later without touching the checkpoint. An
unchanged (identity, size, mtime) skips the read, unless the file had changed within 2 s of the
last read (a same-size rewrite in place can keep its mtime): then it is parsed again.

Usage lives in `say: "api_req_started"` messages, whose `text` is a JSON string with `tokensIn`,
`tokensOut`, `cacheWrites`, `cacheReads`, `cost` (USD) and, for Roo and Kilo, `apiProtocol`. A
request is first saved as a placeholder without counts (not emitted), then rewritten under the
same `ts` with its counts, which may grow. One record per (extension, task, `ts`); the checkpoint
keeps what was emitted for each `ts`, so a record is emitted again only when its values changed
(the ledger keeps the larger total), however often the file is rewritten.

Input tokens (DX's input excludes cache reads and writes):
- `apiProtocol: "openai"`: `tokensIn` includes the cache, input = tokensIn - cacheWrites -
  cacheReads, clamped at 0.
- Roo Code and Kilo Code with `"anthropic"` or no protocol: Roo 3.29.5 (2025-10-31) changed
  `tokensIn` to include the cache. A request with `"anthropic"` before that day excludes it; other
  requests include it when tokensIn >= cacheWrites + cacheReads, else exclude it (the file does not
  say which version wrote it; an old Anthropic-style count is nearly always below its cache counts).
- Cline has no `apiProtocol`: its providers store input without the cache, except its generic
  OpenAI-compatible provider (`modelInfo.providerId: "openai"`), which stores the prompt total.

Rewinds: restoring a checkpoint removes the later messages and appends one summary of the removed
requests' usage at a new `ts` (`api_req_deleted` in Roo and Kilo, `deleted_api_reqs` in Cline,
whose summaries include earlier summaries in the removed range). A summary is never counted on
top of what was already counted: the requests it removed that this reader had counted (gone from
the file, still in the checkpoint, between the message before the summary and the summary) are
subtracted from it, and only the rest is a record. If every removed request had been counted,
nothing is; if this reader never saw them (the first read came after the rewind), the summary
counts whole.

Model: the message's `modelInfo.modelId` (Cline), else a `modelId` or `model` in the request's
text, else none. Only counts, the model, the task id and `ts` (hashed into the key) are used:
never the request text, the task's text or the paths.

Not read: Cline's `subagent_usage` messages (whether a subagent's requests also appear in a task
of their own is not established).

Cline and Kilo Code have a newer store each, read by the same source beside the tasks: Cline 4's
session files (`cline_v4`) and the rebuilt Kilo Code's `kilo.db` (`opencode`). The rebuilt Kilo
Code can import legacy tasks (and Roo Code's) into `kilo.db`; its importer writes no usage (the
copied assistant messages carry zero tokens and no step-finish parts) and gives the messages it
copies `providerID: "legacy"`: step-finish parts under such a message are skipped, so an
imported task's tokens are counted from its `ui_messages.json` only, and what is asked after the
import, in new messages, counts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord
from dx_lsp_telemetry.sources.cline_v4 import ClineSessions
from dx_lsp_telemetry.sources.counts import cost as _cost
from dx_lsp_telemetry.sources.counts import count as _count
from dx_lsp_telemetry.sources.opencode import KiloDb
from dx_lsp_telemetry.sources.whole_json import WholeJson

MESSAGES = "ui_messages.json"
STARTED = "api_req_started"
ROO_DELETED = "api_req_deleted"
CLINE_DELETED = "deleted_api_reqs"

#: VS Code and its forks (the `productName` naming their user-data folder)
PRODUCTS = ("Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf")
#: remote servers' data folders under the home folder (each with `User/globalStorage`)
SERVER_DATA = (
    ".vscode-server",
    ".vscode-server-insiders",
    ".cursor-server",
    ".windsurf-server",
    ".vscodium-server",
)
#: Roo Code #8954, released in 3.29.5: `tokensIn` includes the cache from then on
ROO_INCLUSIVE_SINCE_MS = int(datetime(2025, 10, 31, tzinfo=timezone.utc).timestamp() * 1000)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_COUNTS = ("tokensIn", "tokensOut", "cacheWrites", "cacheReads")
MAX_MODEL = 200
#: a file changed this recently may change again within its mtime's granularity with the same
#: size (an in-place rewrite): its (size, mtime) is not trusted to skip the next read
RACY_NS = 2_000_000_000

#: what a record counted: [input, output, cache writes, cache reads, cost in USD or None]
Usage = list[Any]


def user_data_dirs(env: Mapping[str, str], platform: str = sys.platform) -> list[Path]:
    """The user-data folders of VS Code and its forks, local and remote, on `platform`."""
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    dirs: list[Path] = []
    portable = env.get("VSCODE_PORTABLE", "").strip()
    if portable:
        dirs.append(Path(portable) / "user-data")
    bases: list[Path] = []
    appdata = env.get("VSCODE_APPDATA", "").strip()
    if appdata:
        bases.append(Path(appdata))
    if platform == "win32":
        bases.append(Path(env.get("APPDATA") or home / "AppData" / "Roaming"))
    elif platform == "darwin":
        bases.append(home / "Library" / "Application Support")
    else:
        bases.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config"))
    dirs += [base / product for base in bases for product in PRODUCTS]
    dirs += [home / server / "data" for server in SERVER_DATA]
    return dirs


def _is_rewrite_artefact(name: str) -> bool:
    """A lock, temporary or backup name of a rewrite of `ui_messages.json` in progress."""
    return name == f"{MESSAGES}.lock" or name.startswith((f".{MESSAGES}.", f"{MESSAGES}.tmp."))


class _ClineFamily(Source):
    """The reader shared by Cline and its forks; subclasses name the extension."""

    #: the extension's global-storage folder (its lowercased `publisher.name`)
    extension_id: ClassVar[str]
    #: Roo Code and its forks: `apiProtocol`, and `tokensIn` including the cache since 3.29.5
    roo_family: ClassVar[bool] = False
    debounce_seconds: ClassVar[float] = 1.0

    def __init__(self) -> None:
        #: files whose last read failed to parse, by (identity, size, mtime): a second failure
        #: of an unchanged file is reported, a first one is a write in progress
        self._whole = WholeJson()
        #: the tool's newer store, read beside its tasks (Cline 4's sessions, `kilo.db`)
        self._store = self.newer_store()

    def newer_store(self) -> Source | None:
        return None

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        """Both stores' homes; a configured path replaces the defaults of the store(s) found
        there (of both when neither is there yet)."""
        tasks = self._task_homes(configured, env)
        if self._store is None:
            return tasks
        store = self._store.homes(configured, env)
        if configured.strip():
            has_tasks = bool(self._task_dirs(tasks))
            has_store = next(iter(self._store.files(store)), None) is not None
            if has_tasks and not has_store:
                store = self._store.homes("", env)
            elif has_store and not has_tasks:
                tasks = self._task_homes("", env)
        return tasks + [h for h in store if h not in tasks]

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """The extension's `tasks` folder, and where the newer store will be."""
        homes = list(homes)
        dirs = [h / "tasks" for h in homes if h.name == self.extension_id]
        if self._store is not None:
            dirs += [d for d in self._store.awaited_dirs(self._store_homes(homes)) if d not in dirs]
        return dirs

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        homes = list(homes)
        dirs = self._task_dirs(homes)
        if self._store is not None:
            dirs += [d for d in self._store.watch_dirs(self._store_homes(homes)) if d not in dirs]
        return dirs

    def flat_watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        if self._store is None:
            return []
        return self._store.flat_watch_dirs(self._store_homes(homes))

    def file_for(self, path: Path) -> Path:
        return path if self._store is None else self._store.file_for(path)

    def _store_homes(self, homes: Iterable[Path]) -> list[Path]:
        """The homes of the newer store: not the extension's own folder (the tasks' home)."""
        return [h for h in homes if h.name != self.extension_id]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        homes = list(homes)
        yield from self._task_files(homes)
        if self._store is not None:
            yield from self._store.files(homes)

    def wants(self, path: Path) -> bool:
        return self._is_task_file(path) or (self._store is not None and self._store.wants(path))

    def read(self, path: Path, state: FileState) -> ReadResult:
        if self._store is not None and not self._is_task_file(path):
            return self._store.read(path, state)
        return self._read_task(path, state)

    # -- the legacy tasks ------------------------------------------------------------------

    def _task_homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured.strip():
            path = Path(configured.strip()).expanduser()
            return [path.parent if path.name == "tasks" else path]
        candidates = [d / "User" / "globalStorage" / self.extension_id for d in user_data_dirs(env)]
        found: list[Path] = []
        for path in candidates:
            if path not in found and path.is_dir():
                found.append(path)
        # none yet: the first place the extension would write (so `sources` can say where)
        return found or candidates[:1]

    def _task_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return [h / "tasks" for h in homes if (h / "tasks").is_dir()]

    def _task_files(self, homes: Iterable[Path]) -> Iterator[Path]:
        """Each task's `ui_messages.json`, also while a rewrite has it briefly missing."""
        seen: set[str] = set()
        for tasks in self._task_dirs(homes):
            try:
                entries = sorted(tasks.iterdir())
            except OSError:
                continue
            for task in entries:
                try:
                    if task.is_symlink() or not task.is_dir():
                        continue
                    names = os.listdir(task)
                except OSError:
                    continue
                if MESSAGES not in names and not any(_is_rewrite_artefact(n) for n in names):
                    continue
                path = task / MESSAGES
                real = os.path.realpath(path)
                if real not in seen:
                    seen.add(real)
                    yield path

    def _is_task_file(self, path: Path) -> bool:
        return path.name == MESSAGES and path.parent.parent.name == "tasks"

    def _read_task(self, path: Path, state: FileState) -> ReadResult:
        loaded = self._whole.read(path, state, _signature(state))
        if isinstance(loaded, ReadResult):
            return loaded
        messages, signature = loaded
        rows: dict[str, Usage] = dict(state.get("rows") or {})
        marks: dict[str, Usage] = dict(state.get("marks") or {})
        racy = time.time_ns() - signature[3] < RACY_NS
        new_state: FileState = {
            "identity": signature[:2],
            "size": signature[2],
            "mtime": None if racy else signature[3],
            "rows": rows,
            "marks": marks,
        }
        if not isinstance(messages, list):
            return ReadResult([], new_state, problem="not a JSON array of messages")
        records, bad = self._records(path.parent.name, messages, rows, marks)
        problem = f"skipped {bad} unreadable usage messages" if bad else None
        return ReadResult(records, new_state, problem=problem)

    def _records(
        self,
        task: str,
        messages: list[Any],
        rows: dict[str, Usage],
        marks: dict[str, Usage],
    ) -> tuple[list[SourceRecord], int]:
        present = {m["ts"] for m in messages if isinstance(m, dict) and _is_int(m.get("ts"))}
        records: list[SourceRecord] = []
        bad = 0
        previous: int | None = None  # the ts of the message before (a rewind's restore point)
        done: set[int] = set()
        for message in messages:
            if not isinstance(message, dict) or not _is_int(message.get("ts")):
                continue
            ts: int = message["ts"]
            kind = message.get("say") if message.get("type") == "say" else None
            if kind in (STARTED, ROO_DELETED, CLINE_DELETED) and ts not in done:
                done.add(ts)  # a ts is one record (the first message of a duplicated ts wins)
                try:
                    record = self._record(task, ts, kind, message, rows, marks, previous, present)
                except (ValueError, TypeError, KeyError, OverflowError):
                    bad += 1
                    record = None
                if record is not None:
                    records.append(record)
            previous = ts
        return records, bad

    def _record(
        self,
        task: str,
        ts: int,
        kind: str,
        message: dict[str, Any],
        rows: dict[str, Usage],
        marks: dict[str, Usage],
        previous: int | None,
        present: set[int],
    ) -> SourceRecord | None:
        info = json.loads(message["text"])
        if not isinstance(info, dict):
            raise TypeError("the usage text is not a JSON object")
        if all(info.get(name) is None for name in _COUNTS):
            return None  # a placeholder: the request's counts come with a rewrite
        usage = self._usage(ts, message, info)
        slot = str(ts)
        if kind == STARTED:
            if rows.get(slot) == usage:
                return None  # counted with these values already
            rows[slot] = usage
            return self._to_record(task, ts, message, info, usage)
        if slot in marks:
            return None  # a rewind summary is settled once
        counted = self._removed(rows, marks, present, previous, ts, nested=kind == CLINE_DELETED)
        marks[slot] = usage
        unseen: Usage = [max(0, usage[i] - counted[i]) for i in range(4)]
        cost = usage[4]
        unseen.append(None if cost is None else max(0.0, round(cost - counted[4], 10)))
        if not any(unseen[:4]):
            return None  # every removed request was counted already
        return self._to_record(task, ts, message, info, unseen)

    @staticmethod
    def _removed(
        rows: dict[str, Usage],
        marks: dict[str, Usage],
        present: set[int],
        previous: int | None,
        ts: int,
        *,
        nested: bool,
    ) -> Usage:
        """What was counted of the requests a rewind summary at `ts` covers; forgets them."""
        total: Usage = [0, 0, 0, 0, 0.0]

        def removed(slot: str) -> bool:
            t = int(slot)
            return t not in present and t < ts and (previous is None or t > previous)

        claimed = [(rows, s) for s in rows if removed(s)]
        if nested:  # Cline's summary includes earlier summaries in the removed range
            claimed += [(marks, s) for s in marks if removed(s)]
        for table, slot in claimed:
            usage = table.pop(slot)
            for i in range(4):
                total[i] += usage[i]
            total[4] += usage[4] or 0.0
        return total

    def _usage(self, ts: int, message: dict[str, Any], info: dict[str, Any]) -> Usage:
        tokens_in, tokens_out, cache_writes, cache_reads = (_count(info.get(n)) for n in _COUNTS)
        cache = cache_writes + cache_reads
        protocol = info.get("apiProtocol") or message.get("apiProtocol")
        model_info = message.get("modelInfo")
        provider = model_info.get("providerId") if isinstance(model_info, dict) else None
        if protocol == "openai" or (not self.roo_family and provider == "openai"):
            inclusive = True
        elif self.roo_family:
            old_anthropic = protocol == "anthropic" and ts < ROO_INCLUSIVE_SINCE_MS
            inclusive = not old_anthropic and tokens_in >= cache
        else:
            inclusive = False
        input_tokens = max(0, tokens_in - cache) if inclusive else tokens_in
        return [input_tokens, tokens_out, cache_writes, cache_reads, _cost(info.get("cost"))]

    def _to_record(
        self, task: str, ts: int, message: dict[str, Any], info: dict[str, Any], usage: Usage
    ) -> SourceRecord:
        return SourceRecord(
            key=f"{self.extension_id}:{task}:{ts}",
            timestamp=_EPOCH + timedelta(milliseconds=ts),
            model=_model(message, info),
            input_tokens=usage[0],
            output_tokens=usage[1],
            cache_write_tokens=usage[2],
            cache_read_tokens=usage[3],
            cost_usd=usage[4],
        )


class Cline(_ClineFamily):
    name: ClassVar[str] = "cline"
    label: ClassVar[str] = "cline"
    extension_id: ClassVar[str] = "saoudrizwan.claude-dev"

    def newer_store(self) -> Source | None:
        return ClineSessions()


class RooCode(_ClineFamily):
    name: ClassVar[str] = "rooCode"
    label: ClassVar[str] = "roo-code"
    extension_id: ClassVar[str] = "rooveterinaryinc.roo-cline"
    roo_family: ClassVar[bool] = True


class KiloCode(_ClineFamily):
    name: ClassVar[str] = "kiloCode"
    label: ClassVar[str] = "kilo-code"
    extension_id: ClassVar[str] = "kilocode.kilo-code"
    roo_family: ClassVar[bool] = True

    def newer_store(self) -> Source | None:
        return KiloDb()


def _signature(state: FileState) -> list[int] | None:
    if "identity" not in state:
        return None
    return [*state["identity"], state.get("size"), state.get("mtime")]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _model(message: dict[str, Any], info: dict[str, Any]) -> str | None:
    model_info = message.get("modelInfo")
    candidates = [model_info.get("modelId") if isinstance(model_info, dict) else None]
    candidates += [info.get("modelId"), info.get("model")]
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_MODEL]
    return None
