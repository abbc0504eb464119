"""Which OTLP records are usage, one record type per tool, in DX's disjoint token buckets.

The tools send the same tokens several times (an event, a span, a metric, and again under the
GenAI names), so exactly one record type per tool is taken and everything else is ignored:

- Claude Code: log `claude_code.api_request`. Its `input_tokens` exclude the cache, which
  `cache_read_tokens` and `cache_creation_tokens` give; `output_tokens`; `cost_usd`.
- Gemini CLI, Qwen Code: logs `gemini_cli.api_response`, `qwen-code.api_response`. Their
  `input_token_count` includes `cached_content_token_count` (cache reads): input is the
  difference, plus `tool_token_count` (tool results sent back, billed as input). Thoughts are
  output once: Gemini CLI's `output_token_count` excludes them, Qwen Code's (0.24.4, its
  OpenAI-compatible providers) includes them and repeats them as `thoughts_token_count`;
  `total_token_count` tells which (`genai_usage.buckets`, as the log sources read them). No
  cache writes, no cost.
- Codex: log `codex.sse_event` with `event.kind` = `response.completed` (the one with counts:
  0.169 sends a first one without): input is `input_token_count` - `cached_token_count` (cache
  reads) - `cache_write_token_count` (cache writes), output `output_token_count` (reasoning
  included).
- GitHub Copilot (Chat and CLI): `chat` spans with `gen_ai.usage.*`: input is `input_tokens`
  minus `cache_read.input_tokens` and `cache_creation.input_tokens` (the GenAI convention counts
  both inside it).

Codex's `tool_token_count` holds the total (its callers pass it there): never added. Only the
counts, the model, hashed ids and the time are read: prompts and tool output, which the tools
also put in their events, are never looked at.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dx_lsp_telemetry.otlp import ids
from dx_lsp_telemetry.otlp.otlp_json import Attributes, LogView, SpanView
from dx_lsp_telemetry.shown import show
from dx_lsp_telemetry.sources import genai_usage

CLAUDE, GEMINI, QWEN, CODEX = "claude-code", "gemini-cli", "qwen-code", "codex"
COPILOT_CHAT, COPILOT_CLI = "copilot-chat", "copilot-cli"
#: the log source that also reads each tool (`sources.<name>`): while it is on, it counts that
#: tool and OTLP adds nothing (no key is shared). Claude Code shares its request id: both count.
LOG_SOURCES = {
    CODEX: "codex",
    GEMINI: "geminiCli",
    QWEN: "qwenCode",
    COPILOT_CHAT: "copilotChat",
    COPILOT_CLI: "copilotCli",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_GEMINI_FAMILY = {"gemini_cli.api_response": GEMINI, "qwen-code.api_response": QWEN}
#: `<name>_token_count` of an api_response, in `genai_usage.buckets`' order
_GEMINI_COUNTS = ("input", "output", "cached_content", "thoughts", "tool", "total")


class RecordError(ValueError):
    """A usage record with a value that cannot be counted; the message names the attribute."""


@dataclass(frozen=True)
class Usage:
    #: which tool's record type it is (CLAUDE, ...)
    family: str
    #: the exporter's `service.name`: the DX tool name comes from it
    service: str
    event_id: str
    timestamp: datetime
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float | None = None

    @property
    def token_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )


def from_log(view: LogView) -> Usage | None:
    """The usage a log record holds, or None if it is not a record type taken."""
    names = view.names
    if "claude_code.api_request" in names or ("api_request" in names and _is_claude(view)):
        return _claude(view)
    for name in names:
        family = _GEMINI_FAMILY.get(name)
        if family is not None:
            return _gemini(view, family, name)
    if "codex.sse_event" in names and view.attributes.get("event.kind") == "response.completed":
        return _codex(view)
    return None


def from_span(view: SpanView) -> Usage | None:
    """GitHub Copilot's `chat` spans (one per model call); not `invoke_agent` (the sum of its
    children), and no other tool's spans (their usage comes from their log events)."""
    service = view.resource.service
    if "copilot" not in service.lower():
        return None
    a = view.attributes
    operation = a.get("gen_ai.operation.name")
    if not (view.name == "chat" or view.name.startswith("chat ")) or operation not in (
        None,
        "chat",
    ):
        return None
    if "gen_ai.usage.input_tokens" not in a and "gen_ai.usage.output_tokens" not in a:
        return None
    where = f"span {view.name[:60]!r}"
    total_in = _count(a, "gen_ai.usage.input_tokens", where)
    read = _count(a, _either(a, "gen_ai.usage.cache_read.input_tokens"), where)
    write = _count(a, _either(a, "gen_ai.usage.cache_creation.input_tokens"), where)
    response = a.get("gen_ai.response.id")
    if isinstance(response, str) and response:
        event_id = ids.of_parts("span", response)
    elif view.trace_id and view.span_id:
        event_id = ids.of_parts("span", view.trace_id, view.span_id)
    else:
        raise RecordError(f"{where}: no gen_ai.response.id and no trace and span id")
    nanos = view.end_ns or view.start_ns
    if nanos is None:
        raise RecordError(f"{where}: no startTimeUnixNano or endTimeUnixNano")
    return Usage(
        COPILOT_CHAT if "chat" in service.lower() else COPILOT_CLI,
        service,
        event_id,
        _from_nanos(nanos),
        _model(a, "gen_ai.response.model", "gen_ai.request.model"),
        max(0, total_in - read - write),  # the GenAI convention counts the cache in input
        _count(a, "gen_ai.usage.output_tokens", where),
        write,
        read,
    )


def _either(a: Attributes, dotted: str) -> str:
    """Copilot CLI before 1.0.64 wrote `cache_read_input_tokens` for `cache_read.input_tokens`."""
    if dotted in a:
        return dotted
    return dotted.replace(".input_tokens", "_input_tokens")


def _is_claude(view: LogView) -> bool:
    return (
        view.resource.service.startswith("claude-code")
        or view.resource.scope == "com.anthropic.claude_code"
    )


def _claude(view: LogView) -> Usage:
    a = view.attributes
    where = "claude_code.api_request"
    counts = (
        _count(a, "input_tokens", where),
        _count(a, "output_tokens", where),
        _count(a, "cache_creation_tokens", where),
        _count(a, "cache_read_tokens", where),
    )
    timestamp = _time(view, where)
    request = a.get("request_id")
    client = a.get("client_request_id")
    session = _text(a.get("session.id"))
    if isinstance(request, str) and request:
        event_id = ids.claude_request(request)  # the transcript's requestId: one id for both
    elif isinstance(client, str) and client:
        event_id = ids.of_parts(CLAUDE, "client", client)
    elif a.get("event.sequence") is not None:
        event_id = ids.of_parts(CLAUDE, "sequence", session, _text(a.get("event.sequence")))
    else:
        event_id = ids.of_parts(CLAUDE, session, _stamp(view), *map(str, counts))
    return Usage(
        CLAUDE,
        view.resource.service,
        event_id,
        timestamp,
        _model(a, "model"),
        *counts,
        cost_usd=_cost(a, where),
    )


def _gemini(view: LogView, family: str, where: str) -> Usage:
    a = view.attributes
    found = genai_usage.buckets(
        *(_count(a, f"{name}_token_count", where) for name in _GEMINI_COUNTS),
        # Gemini's API counts thoughts beside the output; Qwen Code's OpenAI-compatible
        # providers (its usual ones) inside it, repeated as thoughts: the total tells which
        thoughts_apart=family == GEMINI,
    )
    session = _text(a.get("session.id") or a.get("sessionId"))
    event_id = ids.of_parts(family, session, _text(a.get("prompt_id")), _stamp(view))
    return Usage(
        family,
        view.resource.service,
        event_id,
        _time(view, where),
        _model(a, "model"),
        found.input,
        found.output,
        0,
        found.cache_read,
    )


def _codex(view: LogView) -> Usage:
    a = view.attributes
    where = "codex.sse_event"
    total_in = _count(a, "input_token_count", where)
    cached = _count(a, "cached_token_count", where)
    written = _count(a, "cache_write_token_count", where)  # 0.169 sends it (0 so far)
    output = _count(a, "output_token_count", where)
    # no response id on the event: the conversation, the moment and the counts (a re-sent
    # record is byte for byte the same)
    conversation = _text(a.get("conversation.id"))
    event_id = ids.of_parts(CODEX, conversation, _stamp(view), str(total_in), str(output))
    return Usage(
        CODEX,
        view.resource.service,
        event_id,
        _time(view, where),
        _model(a, "model", "slug"),
        max(0, total_in - cached - written),  # the prompt count includes the cache
        output,
        written,
        cached,
    )


def _count(a: Attributes, key: str, where: str) -> int:
    value = a.get(key)
    if value is None:
        return 0
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) <= 20:
        return int(value)  # Claude Code before 2.1.122 sent its numbers as strings
    raise RecordError(f"{where}: {key} is not a token count: {show(value, 40)}")


def _cost(a: Attributes, where: str) -> float | None:
    value: Any = a.get("cost_usd")
    if value is None and a.get("cost_usd_micros") is not None:
        return _count(a, "cost_usd_micros", where) / 1_000_000
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise RecordError(f"{where}: cost_usd is not an amount in USD: {show(value, 40)}")
    return float(value)


def _model(a: Attributes, *keys: str) -> str | None:
    for key in keys:
        value = a.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _stamp(view: LogView) -> str:
    """The record's own time as the tool wrote it (for its id): `event.timestamp`, else the
    log record's time."""
    own = view.attributes.get("event.timestamp")
    if isinstance(own, str) and own:
        return own
    return str(view.time_ns or view.observed_ns or "")


def _time(view: LogView, where: str) -> datetime:
    """The record's time; Codex leaves `timeUnixNano` 0 and says it in `event.timestamp`;
    the moment the exporter saw it comes last."""
    if view.time_ns is not None:
        return _from_nanos(view.time_ns)
    own = view.attributes.get("event.timestamp")
    if isinstance(own, str):
        try:
            parsed = datetime.fromisoformat(own.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(timezone.utc)
    if view.observed_ns is not None:
        return _from_nanos(view.observed_ns)
    raise RecordError(f"{where}: no timeUnixNano, event.timestamp or observedTimeUnixNano")


def _from_nanos(nanos: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise RecordError(f"a timestamp out of range: {nanos} ns") from None
