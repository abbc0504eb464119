"""GitHub Copilot Chat in VS Code and its forks: the chat sessions VS Code stores.

Where: `<user data>/User/workspaceStorage/<workspace>/chatSessions/<session>.jsonl` (VS Code
1.109 and later: a patch log, see `chat_session_doc`) or `.json` (earlier: the session rewritten
whole), and `User/globalStorage/emptyWindowChatSessions/` for windows without a folder (microsoft/
vscode `chatSessionStore.ts`). The user data folders are VS Code's, Insiders', Exploration's and
VSCodium's on each OS, `VSCODE_PORTABLE`, `VSCODE_APPDATA`, and VS Code servers' (`code
serve-web`, code-server).

One record is a request (a prompt and its answer, with all its tool rounds): its input is the
request's `promptTokens` (else `result.metadata.promptTokens`, else a `usage` object), its output
its `completionTokens` (else `result.metadata.outputTokens`), as Copilot Chat writes them
(field names as read by tokscale `copilot_vscode.rs` and wakatime `copilot.go`); the model is
`result.metadata.resolvedModel`, else `modelId` without its `copilot/` prefix. There is no cache
split and no cost (Copilot bills in requests), so `spend.estimate` applies. A request without
counts (in progress, cancelled early, or from an older Copilot Chat) is no record.

The key is the session id and the request id (hashed): VS Code copies a session's files when a
window moves to another workspace and keeps the originals, and a session can exist as both
`.json` and `.jsonl`; each copy has the same key, so it counts once. A request whose counts grow
is emitted again (the ledger keeps the larger); the checkpoint keeps what was emitted, per file,
so an unchanged request is not re-emitted when its file is appended to or compacted.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.sources import chat_session_doc as sdoc
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord
from dx_lsp_telemetry.sources.tail import unchanged
from dx_lsp_telemetry.sources.tail_select import chosen_lines, line_number
from dx_lsp_telemetry.sources.whole_json import WholeJson

#: VS Code and the forks that run Copilot Chat (the `productName` naming their data folder)
PRODUCTS = ("Code", "Code - Insiders", "Code - Exploration", "VSCodium")
SERVER_DATA = (".vscode-server", ".vscode-server-insiders", ".vscodium-server")
SESSIONS = "chatSessions"
EMPTY_WINDOW = "emptyWindowChatSessions"
SUFFIXES = (".jsonl", ".json")
#: bytes before the checkpointed offset whose fingerprint proves the file was only appended to
TAIL_BYTES = 64
#: a rewritten `.json` changed this recently may change again within its mtime's granularity
RACY_NS = 2_000_000_000
MAX_EXAMPLES = 3
#: from 2001 to 2100, in milliseconds: anything else is not a request's time
_MS_RANGE = (978_307_200_000, 4_102_444_800_000)

_INPUT = (
    ("promptTokens",),
    ("result", "metadata", "promptTokens"),
    ("usage", "promptTokens"),
    ("usage", "inputTokens"),
    ("result", "usage", "promptTokens"),
    ("result", "metadata", "usage", "promptTokens"),
)
_OUTPUT = (
    ("completionTokens",),
    ("result", "metadata", "outputTokens"),
    ("usage", "completionTokens"),
    ("usage", "outputTokens"),
    ("result", "usage", "completionTokens"),
    ("result", "metadata", "usage", "completionTokens"),
)


def user_data_dirs(env: Mapping[str, str], platform: str = sys.platform) -> list[Path]:
    """The user-data folders of VS Code and the forks running Copilot Chat, on `platform`."""
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


class CopilotChat(Source):
    name: ClassVar[str] = "copilotChat"
    label: ClassVar[str] = "copilot-chat"
    debounce_seconds: ClassVar[float] = 0.5
    parallel_reads: ClassVar[bool] = True

    def __init__(self) -> None:
        #: `.json` files whose last read failed to parse, by signature: a second failure of an
        #: unchanged file is reported, a first one is a write in progress
        self._whole = WholeJson()

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        """`User` folders: the configured one (a user-data folder, its `User` folder or its
        `workspaceStorage`), else every one of the defaults that exists (else the first)."""
        if configured.strip():
            path = Path(configured.strip()).expanduser()
            if path.name == "workspaceStorage":
                return [path.parent]
            return [path if path.name == "User" else path / "User"]
        candidates = [d / "User" for d in user_data_dirs(env)]
        found: list[Path] = []
        for path in candidates:
            if path not in found and path.is_dir():
                found.append(path)
        return found or candidates[:1]

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """None: a `chatSessions` folder appears in each workspace's storage folder, which is
        made for every workspace opened (awaiting them all would watch `workspaceStorage`)."""
        return []

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """Each workspace's `chatSessions` folder and the empty windows' one: watching all of
        `workspaceStorage` would watch every extension's storage. A workspace opened later is
        found by the periodic scan (and watched from then on)."""
        dirs: list[Path] = []
        for home in homes:
            try:
                workspaces = sorted((home / "workspaceStorage").iterdir())
            except OSError:
                workspaces = []
            dirs += [w / SESSIONS for w in workspaces if (w / SESSIONS).is_dir()]
            empty = home / "globalStorage" / EMPTY_WINDOW
            if empty.is_dir():
                dirs.append(empty)
        return dirs

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[str] = set()
        for folder in self.watch_dirs(homes):
            real = os.path.realpath(folder)
            if real in seen:
                continue
            seen.add(real)
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.suffix in SUFFIXES and not entry.is_symlink() and entry.is_file():
                        yield entry
                except OSError:
                    continue

    def wants(self, path: Path) -> bool:
        return path.suffix in SUFFIXES and path.parent.name in (SESSIONS, EMPTY_WINDOW)

    # -- reading -------------------------------------------------------------------------

    def read(self, path: Path, state: FileState) -> ReadResult:
        if path.suffix == ".jsonl":
            return self._read_log(path, state)
        return self._read_snapshot(path, state)

    def _read_log(self, path: Path, state: FileState) -> ReadResult:
        if unchanged(path, state):
            return ReadResult([], state)
        sent: dict[str, str] = dict(state.get("sent") or {})
        reported: list[str] = list(state.get("bad") or [])
        if not _only_appended(path, state):
            state.clear()  # compacted or replaced: replayed from its first line
        bad: list[str] = []
        doc: dict[str, Any] | None = None
        loaded = False
        for offset, line in chosen_lines(path, state, _wanted):
            if not loaded:  # after the reader's own check of the file (it may start over)
                doc, loaded = state.get("doc"), True
            if not line.strip():
                continue
            try:
                doc = sdoc.apply(doc, sdoc.decode_line(line))
            except sdoc.Misfit as exc:
                bad.append(f"line {line_number(path, offset)}: {exc}")
        state["sent"], state["bad"] = sent, reported
        if not loaded:
            return ReadResult([], state, problem=_problem(bad, []))
        state["doc"] = doc
        state["tail"] = _tail(path, state)
        records, problems = self._records(path, doc, sent)
        state["bad"] = problems
        return ReadResult(records, state, problem=_problem(bad, _new(problems, reported)))

    def _read_snapshot(self, path: Path, state: FileState) -> ReadResult:
        loaded = self._whole.read(
            path, state, [*state.get("identity", []), state.get("size"), state.get("mtime")]
        )
        if isinstance(loaded, ReadResult):
            return loaded
        data, signature = loaded
        sent: dict[str, str] = dict(state.get("sent") or {})
        reported: list[str] = list(state.get("bad") or [])
        racy = time.time_ns() - signature[3] < RACY_NS
        new_state: FileState = {
            "identity": signature[:2],
            "size": signature[2],
            "mtime": None if racy else signature[3],
        }
        doc = sdoc.prune(data, sdoc.SESSION)
        if not isinstance(doc, dict):
            new_state["sent"] = sent
            return ReadResult([], new_state, problem="not a JSON object (a chat session)")
        records, problems = self._records(path, doc, sent)
        new_state["sent"], new_state["bad"] = sent, problems
        return ReadResult(records, new_state, problem=_problem([], _new(problems, reported)))

    def _records(
        self, path: Path, doc: Any, sent: dict[str, str]
    ) -> tuple[list[SourceRecord], list[str]]:
        """The session's requests with counts not emitted with these values yet; `sent` is
        updated, and keeps only the requests still in the session."""
        if not isinstance(doc, dict):
            sent.clear()
            return [], []
        session = doc.get("sessionId")
        if not isinstance(session, str) or not session:
            session = sdoc.hash_id(path.stem)  # the file is named after the session
        requests = doc.get("requests")
        if not isinstance(requests, list):
            sent.clear()
            return [], ([] if requests is None else ["requests is not a list"])
        records: list[SourceRecord] = []
        problems: list[str] = []
        present: set[str] = set()
        for index, request in enumerate(requests):
            if not isinstance(request, dict):
                continue
            try:
                found = _request(session, request)
            except ValueError as exc:
                problems.append(f"request {index + 1}: {exc}")
                continue
            if found is None:
                continue
            # short fingerprints: the checkpoint holds one per request of every session
            key, record, signature = found
            slot = sdoc.hash_id(key)[:16]
            present.add(slot)
            mark = sdoc.hash_id(json.dumps(signature))[:8]
            if sent.get(slot) != mark:
                sent[slot] = mark
                records.append(record)
        for key in [k for k in sent if k not in present]:
            del sent[key]
        return records, problems


def _request(session: str, request: dict[str, Any]) -> tuple[str, SourceRecord, list[Any]] | None:
    input_tokens = _first_count(request, _INPUT)
    output_tokens = _first_count(request, _OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    stamp = request.get("timestamp")
    if isinstance(stamp, float) and math.isfinite(stamp):
        stamp = int(stamp)
    if type(stamp) is not int or not _MS_RANGE[0] <= stamp < _MS_RANGE[1]:
        raise ValueError(f"no usable timestamp ({_show(stamp)})")
    request_id = request.get("requestId")
    if isinstance(request_id, str) and request_id:
        key = f"{session}:{request_id}"
    else:
        key = f"{session}:t{stamp}"  # an old request without an id: its time is its identity
    model = _model(request)
    counts = (input_tokens or 0, output_tokens or 0)
    record = SourceRecord(
        key=key,
        timestamp=datetime.fromtimestamp(stamp / 1000, tz=timezone.utc),
        model=model,
        input_tokens=counts[0],
        output_tokens=counts[1],
    )
    return key, record, [counts[0], counts[1], model, stamp]


def _first_count(request: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> int | None:
    for path in paths:
        node: Any = request
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        if node is None:
            continue
        if isinstance(node, float) and node.is_integer():
            node = int(node)
        if type(node) is not int or node < 0:
            raise ValueError(f"{'.'.join(path)} is not a token count ({_show(node)})")
        return int(node)
    return None


def _model(request: dict[str, Any]) -> str | None:
    result = request.get("result")
    metadata = result.get("metadata") if isinstance(result, dict) else None
    resolved = metadata.get("resolvedModel") if isinstance(metadata, dict) else None
    if isinstance(resolved, str) and resolved.strip():
        return resolved.strip()
    model = request.get("modelId")
    if isinstance(model, str) and model.strip():
        model = model.strip()
        return model[len("copilot/") :] if model.startswith("copilot/") else model
    return None


def _wanted(head: bytes) -> bool:
    """Whether a patch line can change what is kept, from its first bytes (a line not in the
    usual shape is decoded to see)."""
    found = sdoc.patch_head(head)
    return found is None or sdoc.wanted(*found)


def _only_appended(path: Path, state: FileState) -> bool:
    """Whether the bytes before the checkpointed offset are still the ones read: the size and
    first bytes `chosen_lines` checks do not catch a compaction that grew past the offset."""
    offset = int(state.get("offset", 0))
    if not offset or "tail" not in state:
        return True
    return bool(_tail(path, state) == state["tail"])


def _tail(path: Path, state: FileState) -> str | None:
    offset = int(state.get("offset", 0))
    try:
        with open(path, "rb") as f:
            f.seek(max(0, offset - TAIL_BYTES))
            data = f.read(min(offset, TAIL_BYTES))
    except OSError:
        return None
    return sdoc.hash_id(data.decode("latin-1"))


def _new(problems: list[str], reported: list[str]) -> list[str]:
    """The problems not reported by the last read of the file (each is told once)."""
    old = set(reported)
    return [p for p in problems if p not in old]


def _problem(bad: list[str], problems: list[str]) -> str | None:
    parts = []
    if bad:
        parts.append(f"skipped {len(bad)} unreadable lines ({_examples(bad)})")
    if problems:
        parts.append(f"skipped {len(problems)} requests ({_examples(problems)})")
    return "; ".join(parts) or None


def _examples(items: list[str]) -> str:
    return "; ".join(items[:MAX_EXAMPLES]) + ("; ..." if len(items) > MAX_EXAMPLES else "")


def _show(value: Any) -> str:
    """What a wrong value is, never the value (it may be anything the file holds)."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or (value >= 0 and value == int(value)):
            return "out of range"
        return "negative" if value < 0 else "a fraction"
    if isinstance(value, str):
        return "an object or array" if value in ("<object>", "<array>") else "a string"
    return "not a number"
