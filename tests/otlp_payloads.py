"""OTLP JSON export requests as the AI tools send them, and a client for the receiver.

Built from the field lists of each tool's telemetry (Claude Code's docs, Gemini CLI's
`loggers.ts`, Qwen Code's telemetry docs, Codex's `session_telemetry.rs`, Copilot Chat's agent
monitoring doc), the way their SDKs encode them:
64-bit integers as strings (or numbers, as Claude Code 2.1.233 does), hex ids, and every
attribute the tools add beside the counts, prompts included (`logPrompts` and the like), so that
tests can prove those never reach the ledger.
"""

from __future__ import annotations

import gzip
import json
import socket
from datetime import datetime, timezone
from typing import Any

from dx_lsp_telemetry.settings.days import format_ts

#: prompt text and tool output the tools put in their events (never to be stored)
SECRET_PROMPT = "refactor the payroll module of Project Nightingale"
SECRET_OUTPUT = "def pay(employee): return employee.salary  # nightingale-internal"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nanos(ts: datetime) -> str:
    return str(int(ts.timestamp() * 1_000_000) * 1000)


def value(v: Any, *, numbers: bool = False) -> dict[str, Any]:
    """An AnyValue; ints as decimal strings (proto3 JSON), or as numbers with `numbers`."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": v if numbers else str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x, numbers=numbers) for x in v]}}
    return {"stringValue": str(v)}


def attributes(values: dict[str, Any], *, numbers: bool = False) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v, numbers=numbers)} for k, v in values.items()]


def resource(service: str, **extra: Any) -> dict[str, Any]:
    return {
        "attributes": attributes(
            {"service.name": service, "service.version": "2.1.240", "os.type": "linux", **extra}
        )
    }


def logs_request(
    service: str,
    records: list[dict[str, Any]],
    scope: str = "",
    **resource_extra: Any,
) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": resource(service, **resource_extra),
                "scopeLogs": [{"scope": {"name": scope, "version": "1"}, "logRecords": records}],
            }
        ]
    }


def log_record(
    ts: datetime, attrs: dict[str, Any], *, body: str | None = None, numbers: bool = False
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timeUnixNano": nanos(ts),
        "observedTimeUnixNano": nanos(ts),
        "severityNumber": 9,
        "severityText": "INFO",
        "attributes": attributes(attrs, numbers=numbers),
        "droppedAttributesCount": 0,
    }
    if body is not None:
        record["body"] = {"stringValue": body}
    return record


# -- Claude Code ------------------------------------------------------------------------------

CLAUDE_SESSION = "5b0f8c1e-7a3d-4c2b-9e8f-1d2c3b4a5f60"


def claude_common(ts: datetime, prompt_id: str, sequence: int) -> dict[str, Any]:
    return {
        "session.id": CLAUDE_SESSION,
        "user.id": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "user.account_uuid": "0a1b2c3d-0000-4000-8000-00000000a11c",
        "user.email": "dev@example.com",
        "organization.id": "0a1b2c3d-0000-4000-8000-0000000000o1",
        "terminal.type": "vscode",
        "app.version": "2.1.240",
        "app.entrypoint": "claude-vscode",
        "event.timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event.sequence": sequence,
        "prompt.id": prompt_id,
    }


def claude_api_request(
    ts: datetime,
    request_id: str | None,
    *,
    model: str = "claude-sonnet-4-5-20250929",
    inp: int = 0,
    out: int = 0,
    cache_read: int = 0,
    cache_creation: int = 0,
    cost: float | None = 0.0123,
    sequence: int = 1,
    numbers: bool = False,
    strings: bool = False,
) -> dict[str, Any]:
    """A `claude_code.api_request` event (`strings`: numbers as strings, as before 2.1.122)."""
    attrs: dict[str, Any] = {
        **claude_common(ts, "prompt-7f3e", sequence),
        "event.name": "api_request",
        "model": model,
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": cache_read,
        "cache_creation_tokens": cache_creation,
        "duration_ms": 2314,
        "speed": "normal",
        "query_source": "repl_main_thread",
    }
    if cost is not None:
        attrs["cost_usd"] = cost
    if request_id is not None:
        attrs["request_id"] = request_id
    if strings:
        attrs = {k: str(v) if isinstance(v, (int, float)) else v for k, v in attrs.items()}
    return log_record(ts, attrs, body="claude_code.api_request", numbers=numbers)


def claude_noise(ts: datetime) -> list[dict[str, Any]]:
    """What Claude Code sends beside its api_request events: the prompt, a tool's result."""
    common = claude_common(ts, "prompt-7f3e", 2)
    return [
        log_record(
            ts,
            {
                **common,
                "event.name": "user_prompt",
                "prompt": SECRET_PROMPT,
                "prompt_length": len(SECRET_PROMPT),
            },
            body="claude_code.user_prompt",
        ),
        log_record(
            ts,
            {
                **common,
                "event.name": "tool_result",
                "tool_name": "Bash",
                "success": "true",
                "tool_parameters": json.dumps({"command": SECRET_OUTPUT}),
                "tool_result_size_bytes": 4096,
            },
            body="claude_code.tool_result",
        ),
        log_record(
            ts,
            {**common, "event.name": "api_error", "error": SECRET_OUTPUT, "status_code": "529"},
            body="claude_code.api_error",
        ),
    ]


def claude_logs(records: list[dict[str, Any]], service: str = "claude-code") -> dict[str, Any]:
    return logs_request(service, records, scope="com.anthropic.claude_code.events")


def claude_token_metrics(ts: datetime, tokens: int) -> dict[str, Any]:
    """`claude_code.token.usage` restating the same request (never to be added)."""
    point = {
        "attributes": attributes({"type": "input", "model": "claude-sonnet-4-5-20250929"}),
        "startTimeUnixNano": nanos(ts),
        "timeUnixNano": nanos(ts),
        "asDouble": float(tokens),
    }
    return {
        "resourceMetrics": [
            {
                "resource": resource("claude-code"),
                "scopeMetrics": [
                    {
                        "scope": {"name": "com.anthropic.claude_code", "version": "2.1.240"},
                        "metrics": [
                            {
                                "name": "claude_code.token.usage",
                                "unit": "tokens",
                                "sum": {
                                    "dataPoints": [point],
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


# -- Gemini CLI, Qwen Code -----------------------------------------------------------------------


def gemini_api_response(
    ts: datetime,
    prompt_id: str,
    *,
    event: str = "gemini_cli.api_response",
    session: str = "c0ffee00-1111-4222-8333-444455556666",
    model: str = "gemini-2.5-pro",
    inp: int = 0,
    out: int = 0,
    cached: int = 0,
    thoughts: int = 0,
    tool: int = 0,
) -> dict[str, Any]:
    attrs = {
        "session.id": session,
        "installation.id": "9d9d9d9d-0000-4000-8000-000000000001",
        "interactive": True,
        "user.email": "dev@example.com",
        "event.name": event,
        "event.timestamp": format_ts(ts),
        "model": model,
        "status_code": 200,
        "duration_ms": 1810,
        "input_token_count": inp,
        "output_token_count": out,
        "cached_content_token_count": cached,
        "thoughts_token_count": thoughts,
        "tool_token_count": tool,
        "total_token_count": inp + out + thoughts + tool,
        "prompt_id": prompt_id,
        "auth_type": "gemini-api-key",
        "finish_reasons": ["STOP"],
        "response_text": SECRET_OUTPUT,
    }
    return log_record(ts, attrs)


def gemini_twins(ts: datetime, prompt_id: str, inp: int, out: int) -> list[dict[str, Any]]:
    """What Gemini CLI logs beside its api_response: the prompt and the GenAI twin event."""
    return [
        log_record(
            ts,
            {
                "event.name": "gemini_cli.user_prompt",
                "prompt": SECRET_PROMPT,
                "prompt_id": prompt_id,
                "event.timestamp": format_ts(ts),
            },
        ),
        log_record(
            ts,
            {
                "event.name": "gen_ai.client.inference.operation.details",
                "gen_ai.response.id": "resp-" + prompt_id,
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": out,
                "gen_ai.request.model": "gemini-2.5-pro",
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [SECRET_PROMPT]}]),
            },
        ),
    ]


# -- Codex ---------------------------------------------------------------------------------------


def codex_sse_event(
    ts: datetime,
    kind: str = "response.completed",
    *,
    conversation: str = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    model: str = "gpt-5-codex",
    inp: int = 0,
    out: int = 0,
    cached: int = 0,
    reasoning: int = 0,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "event.name": "codex.sse_event",
        "event.timestamp": format_ts(ts),
        "event.kind": kind,
        "conversation.id": conversation,
        "app.version": "0.142.0",
        "auth_mode": "ApiKey",
        "originator": "codex_cli_rs",
        "user.email": "dev@example.com",
        "terminal.type": "vscode",
        "model": model,
        "slug": model,
        "duration_ms": 950,
    }
    if kind == "response.completed":
        attrs.update(
            {
                "input_token_count": inp,
                "output_token_count": out,
                "cached_token_count": cached,
                "reasoning_token_count": reasoning,
                # the total, under the name of a part (codex-rs passes usage.total_tokens here)
                "tool_token_count": inp + out,
            }
        )
    return log_record(ts, attrs)


def codex_prompt(ts: datetime) -> dict[str, Any]:
    return log_record(
        ts,
        {
            "event.name": "codex.user_prompt",
            "event.timestamp": format_ts(ts),
            "conversation.id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "prompt": SECRET_PROMPT,
            "prompt_length": len(SECRET_PROMPT),
        },
    )


# -- GitHub Copilot (spans) ----------------------------------------------------------------------


def span(
    name: str,
    trace_id: str,
    span_id: str,
    start: datetime,
    attrs: dict[str, Any],
    parent: str = "",
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": nanos(start),
        "endTimeUnixNano": nanos(start),
        "attributes": attributes(attrs),
        "status": {"code": 1},
    }


def copilot_chat_span(
    start: datetime,
    span_id: str,
    *,
    response_id: str | None,
    inp: int,
    out: int,
    cache_read: int = 0,
    cache_creation: int = 0,
    parent: str = "00f067aa0ba902b7",
    trace_id: str = "4BF92F3577B34DA6A3CE929D0E0E4736",
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "github_copilot",
        "gen_ai.request.model": "claude-sonnet-4.5",
        "gen_ai.response.model": "claude-sonnet-4.5",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.cache_creation.input_tokens": cache_creation,
        "gen_ai.usage.reasoning.output_tokens": 40,
        "copilot_chat.session_id": "sess-1",
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": SECRET_PROMPT}]),
    }
    if response_id is not None:
        attrs["gen_ai.response.id"] = response_id
    return span("chat claude-sonnet-4.5", trace_id, span_id, start, attrs, parent)


def copilot_invoke_agent(start: datetime, inp: int, out: int) -> dict[str, Any]:
    return span(
        "invoke_agent GitHub Copilot Chat",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        start,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            "gen_ai.conversation.id": "conv-1",
        },
    )


def traces_request(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": resource(service),
                "scopeSpans": [{"scope": {"name": "copilot-chat"}, "spans": spans}],
            }
        ]
    }


# -- sending -------------------------------------------------------------------------------------


def encoded(request: dict[str, Any], *, compress: bool = False) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    if compress:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return data, headers


def at_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
