"""Gemini CLI: `tmp/<project>/chats/` under `~/.gemini` (or `$GEMINI_CLI_HOME/.gemini`).

A session is `session-<time>-<id8>.jsonl` (a subagent's, `<parent id>/<session id>.jsonl`), an
event log: a header `{sessionId, projectHash, startTime, …}`, then each message appended whole
every time it changes (its tokens arrive after it, its tool calls one by one), `{"$set": …}`
patches (one may carry the whole message list) and `{"$rewindTo": <message id>}`. Older versions
rewrite `session-*.json` whole (`{sessionId, …, messages: [...]}`); resuming one copies it into a
`.jsonl` beside it.

One record per `gemini` message with `tokens`, keyed by session id + message id: every copy of a
message (re-appended, migrated from the `.json`, in a session copied elsewhere) is the same
record, the ledger keeps one. A resume's `$set` of the whole message list is not read for tokens:
it is rebuilt from the model's history, re-stamped with the resume's time (and without tokens in
0.61.0). A rewind hides messages from the session's view, but their tokens were spent: what was
counted stays counted. `tokens.input` includes `cached`; `thoughts`
and `tool` come on top (see `genai_usage`). Gemini CLI records no cost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from hashlib import blake2b
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources import genai_usage
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, walk_files
from dx_lsp_telemetry.sources.emitted import is_new
from dx_lsp_telemetry.sources.line_problems import LineProblems, json_objects
from dx_lsp_telemetry.sources.whole_json import WholeJson

MAX_MODEL = 200
#: a file changed this recently may be rewritten again within its mtime's granularity
RACY_NS = 2_000_000_000


class GeminiCli(Source):
    name: ClassVar[str] = "geminiCli"
    label: ClassVar[str] = "gemini-cli"
    watch_subdirs: ClassVar[tuple[str, ...]] = ("tmp",)

    def __init__(self) -> None:
        #: legacy files whose last read failed to parse, by signature: a second failure of an
        #: unchanged file is reported, a first one is a rewrite in progress
        self._whole = WholeJson()

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured.strip():
            path = Path(configured.strip()).expanduser()
            return [path.parent if path.name == "tmp" else path]
        base = env.get("GEMINI_CLI_HOME", "").strip()  # Gemini CLI's stand-in for the home folder
        home = Path(base).expanduser() if base else Path(env.get("HOME") or Path.home())
        return [home / ".gemini"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[str] = set()
        for tmp in self.watch_dirs(homes):
            try:
                projects = sorted(tmp.iterdir())
            except OSError:
                continue
            for project in projects:
                chats = project / "chats"
                real = os.path.realpath(chats)
                if real in seen or project.is_symlink():
                    continue
                seen.add(real)
                for path in walk_files(chats, ""):
                    if _is_chat(path.name):
                        yield path

    def wants(self, path: Path) -> bool:
        parts = path.parts
        return _is_chat(path.name) and any(
            parts[i] == "chats" and parts[i - 2] == "tmp" for i in range(2, len(parts) - 1)
        )

    def read(self, path: Path, state: FileState) -> ReadResult:
        if path.suffix == ".jsonl":
            return self._read_log(path, state)
        return self._read_whole(path, state)

    # -- the event log -------------------------------------------------------------------

    def _read_log(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        problems = LineProblems()
        for number, data in json_objects(path, state, problems):
            for what in self._entry(data, state, records):
                problems.add(number, what)
        return ReadResult(records, state, problem=problems.text())

    def _entry(self, data: dict[str, Any], state: FileState, out: list[SourceRecord]) -> list[str]:
        """Take one line of the log; what was wrong with it, if anything."""
        if "$rewindTo" in data:
            return []  # the rewound messages' tokens were spent: nothing to take back
        patch = data.get("$set")
        if isinstance(patch, dict):
            # a `messages` list here is the session rebuilt from the model's history on resume:
            # copies re-stamped with the resume's time, without tokens (0.61.0); the appended
            # messages are the record
            _session(patch, state)
            return []
        if isinstance(data.get("id"), str):
            return self._message(data, state, out)
        _session(data, state)  # the header
        return []

    def _message(self, message: Any, state: FileState, out: list[SourceRecord]) -> list[str]:
        if not isinstance(message, dict) or message.get("type") != "gemini":
            return []
        tokens = message.get("tokens")
        if tokens is None:
            return []  # its tokens come with a later copy
        try:
            record = _record(state.get("session"), message, tokens)
        except (ValueError, TypeError) as exc:
            return [str(exc)]
        if is_new(state, record.key, _values(record)):
            out.append(record)
        return []

    # -- the legacy rewritten JSON -------------------------------------------------------

    def _read_whole(self, path: Path, state: FileState) -> ReadResult:
        loaded = self._whole.read(path, state, state.get("signature"))
        if isinstance(loaded, ReadResult):
            return loaded
        data, signature = loaded
        racy = time.time_ns() - signature[3] < RACY_NS
        # a same-size rewrite within the mtime's granularity must not look unchanged
        state["signature"] = [*signature[:3], None] if racy else signature
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list):
            return ReadResult([], state, problem="not a Gemini CLI chat (no `messages` list)")
        state["session"] = _session_key(data.get("sessionId"))
        records: list[SourceRecord] = []
        problems = LineProblems("message")
        for number, message in enumerate(messages, 1):
            for what in self._message(message, state, records):
                problems.add(number, what)
        return ReadResult(records, state, problem=problems.text())


def _is_chat(name: str) -> bool:
    return name.endswith(".jsonl") or (name.startswith("session-") and name.endswith(".json"))


def _session(data: dict[str, Any], state: FileState) -> None:
    if not state.get("session"):
        state["session"] = _session_key(data.get("sessionId"))


def _session_key(session: Any) -> str | None:
    """The session id as it goes into record keys and the checkpoint: hashed (an id is not
    private, but nothing needs it readable)."""
    if not isinstance(session, str) or not session:
        return None
    return blake2b(session.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _record(session: Any, message: dict[str, Any], tokens: Any) -> SourceRecord:
    if not isinstance(tokens, dict):
        raise TypeError("`tokens` is not an object")
    message_id = message["id"]
    if not isinstance(message_id, str) or not message_id:
        raise TypeError("the message has no `id`")
    stamp = message.get("timestamp")
    if not isinstance(stamp, str):
        raise TypeError("the message has no `timestamp`")
    try:
        when = parse_ts(stamp)
    except ValueError as exc:
        raise ValueError(f"`timestamp`: {exc}") from None
    counts = {n: genai_usage.count(tokens, n) for n in ("input", "output", "cached", "thoughts")}
    found = genai_usage.buckets(
        counts["input"],
        counts["output"],
        counts["cached"],
        counts["thoughts"],
        genai_usage.count(tokens, "tool"),
        genai_usage.count(tokens, "total"),
        thoughts_apart=True,
    )
    model = message.get("model")
    model = model.strip()[:MAX_MODEL] if isinstance(model, str) and model.strip() else None
    key = f"{session}:{message_id}" if isinstance(session, str) and session else message_id
    return SourceRecord(
        key=key,
        timestamp=when,
        model=model,
        input_tokens=found.input,
        output_tokens=found.output,
        cache_read_tokens=found.cache_read,
    )


def _values(record: SourceRecord) -> list[Any]:
    return [record.input_tokens, record.output_tokens, record.cache_read_tokens, record.model]
