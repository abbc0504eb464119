"""Qwen Code: `projects/<project>/chats/<session>.jsonl` under Qwen Code's runtime folder
(`QWEN_RUNTIME_DIR`, else `advanced.runtimeOutputDir` of its `settings.json`, else `QWEN_HOME`,
else `~/.qwen`).

Each chat is an append-only log of `ChatRecord`s `{uuid, parentUuid, sessionId, timestamp, type,
subtype, …}`. Every model call of the session, its background helpers' included (the memory
extractor, subagents), is a `system` record of subtype `ui_telemetry` whose
`systemPayload.uiEvent` is a `qwen-code.api_response` with the call's counts: one record each,
keyed by what Qwen Code's OTLP export of the call also carries (`session.id`, `prompt_id`,
`response_id` and the four counts: `_shared_key`), else by the record's `uuid`. The `assistant`
record that follows a main call repeats its `usageMetadata` (a subagent's rounds repeat theirs
in `subagents/`, not read): counting both is the peers' double count, so an `assistant` record
counts only in a chat that has shown no `api_response` (versions that wrote none). A fork
(`--fork-session`, `/branch`) copies the parent's records with their `uuid` under a new session
id and `forkedFrom`: those are skipped. A rewind leaves what it rewound in the log; it was spent
and stays counted.

The prompt count includes the cache (and cache writes, which are not told apart); thoughts are
inside the output count with OpenAI-compatible providers, beside it with Gemini's (`genai_usage`).
Only counts, the model and the timestamp are stored (the ids only hashed into the key): never
the response text, the prompt or the cwd.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources import genai_usage
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, walk_files
from dx_lsp_telemetry.sources.line_problems import LineProblems, json_objects

API_RESPONSE = "qwen-code.api_response"
MAX_MODEL = 200
#: (usage field names) of an `api_response` event and of an `assistant` record's usageMetadata
_EVENT = (
    "input_token_count",
    "output_token_count",
    "cached_content_token_count",
    "thoughts_token_count",
    "tool_token_count",
    "total_token_count",
)
_METADATA = (
    "promptTokenCount",
    "candidatesTokenCount",
    "cachedContentTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
)


class QwenCode(Source):
    name: ClassVar[str] = "qwenCode"
    label: ClassVar[str] = "qwen-code"
    watch_subdirs: ClassVar[tuple[str, ...]] = ("projects",)

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        if configured.strip():
            path = Path(configured.strip()).expanduser()
            return [path.parent if path.name == "projects" else path]
        home = Path(env.get("HOME") or Path.home())
        config = _expand(env.get("QWEN_HOME", ""), home) or home / ".qwen"
        candidates = [
            _expand(env.get("QWEN_RUNTIME_DIR", ""), home),
            _runtime_output_dir(config, home),
            config,  # sessions from before a runtime folder was set stay here
        ]
        homes: list[Path] = []
        for candidate in candidates:
            if candidate is not None and candidate not in homes:
                homes.append(candidate)
        return homes

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[Path] = set()
        for projects in self.watch_dirs(homes):
            try:
                entries = sorted(projects.iterdir())
            except OSError:
                continue
            for project in entries:
                if project.is_symlink():
                    continue
                for path in walk_files(project / "chats", ".jsonl"):
                    if path.parent.name == "chats" and path.resolve() not in seen:
                        seen.add(path.resolve())
                        yield path

    def wants(self, path: Path) -> bool:
        chats = path.parent
        return (
            path.suffix == ".jsonl"
            and chats.name == "chats"
            and chats.parent.parent.name == "projects"
        )

    def read(self, path: Path, state: FileState) -> ReadResult:
        records: list[SourceRecord] = []
        problems = LineProblems()
        for number, data in json_objects(path, state, problems):
            try:
                record = _record(data, state)
            except (ValueError, TypeError) as exc:
                problems.add(number, str(exc))
                continue
            if record is not None:
                records.append(record)
        return ReadResult(records, state, problem=problems.text())


def _record(data: dict[str, Any], state: FileState) -> SourceRecord | None:
    if data.get("forkedFrom") is not None:
        return None  # a fork's copy of its parent's history
    kind = data.get("type")
    if kind == "system" and data.get("subtype") == "ui_telemetry":
        payload = data.get("systemPayload")
        event = payload.get("uiEvent") if isinstance(payload, dict) else None
        if not isinstance(event, dict) or event.get("event.name") != API_RESPONSE:
            return None
        state["telemetry"] = True
        return _usage_record(
            data, event, _EVENT, event.get("model"), shared=_shared_key(data, event)
        )
    if kind == "assistant" and not state.get("telemetry"):
        usage = data.get("usageMetadata")
        if usage is None:
            return None
        if not isinstance(usage, dict):
            raise TypeError("`usageMetadata` is not an object")
        return _usage_record(data, usage, _METADATA, data.get("model"))
    return None


def _shared_key(data: dict[str, Any], event: dict[str, Any]) -> str | None:
    """The call's identity as Qwen Code's OTLP `qwen-code.api_response` log states it too:
    session, prompt id, the API's response id and the counts (some providers' response ids
    repeat: the counts keep two calls of one prompt apart). None without those ids."""
    ids = [data.get("sessionId"), event.get("prompt_id"), event.get("response_id")]
    parts = [p for p in ids if isinstance(p, str) and p]
    if len(parts) < len(ids):
        return None
    parts += [str(genai_usage.count(event, name)) for name in _EVENT[:4]]
    return ":".join(parts)


def _usage_record(
    data: dict[str, Any],
    usage: dict[str, Any],
    fields: tuple[str, ...],
    model: Any,
    *,
    shared: str | None = None,
) -> SourceRecord:
    uuid = data.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise TypeError("the record has no `uuid`")
    stamp = data.get("timestamp")
    if not isinstance(stamp, str):
        raise TypeError("the record has no `timestamp`")
    try:
        when = parse_ts(stamp)
    except ValueError as exc:
        raise ValueError(f"`timestamp`: {exc}") from None
    counts = [genai_usage.count(usage, name) for name in fields]
    found = genai_usage.buckets(*counts, thoughts_apart=False)
    return SourceRecord(
        key=shared or uuid,
        timestamp=when,
        model=model.strip()[:MAX_MODEL] if isinstance(model, str) and model.strip() else None,
        input_tokens=found.input,
        output_tokens=found.output,
        cache_read_tokens=found.cache_read,
    )


def _expand(text: str, home: Path) -> Path | None:
    text = text.strip()
    if not text:
        return None
    if text == "~" or text.startswith(("~/", "~\\")):
        return home / text[2:]
    return Path(text).absolute()


def _runtime_output_dir(config: Path, home: Path) -> Path | None:
    """`advanced.runtimeOutputDir` of the user settings, when absolute or under `~` (a relative
    one is per project, resolved against a working folder we cannot know)."""
    try:
        settings = json.loads((config / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    advanced = settings.get("advanced") if isinstance(settings, dict) else None
    value = advanced.get("runtimeOutputDir") if isinstance(advanced, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    path = value.strip()
    if path == "~" or path.startswith(("~/", "~\\")) or Path(path).is_absolute():
        return _expand(path, home)
    return None
