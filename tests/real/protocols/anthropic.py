"""Anthropic Messages (`POST /v1/messages`, JSON or SSE; `count_tokens`), as Claude Code and
Copilot CLI's anthropic provider speak it.

Usage carries `cache_creation_input_tokens` WITHOUT the `cache_creation` 5-minute/1-hour
split, as gateways and proxies send it: that is what found Claude Code writing a zero split
beside a non-zero total."""

from __future__ import annotations

from typing import Any

from tests.real.protocols import Call, NextUsage, Reply, json_reply, reply_text, sse

NAME = "anthropic-messages"


def handles(call: Call) -> bool:
    return call.method == "POST" and call.path in ("/v1/messages", "/v1/messages/count_tokens")


def answer(call: Call, next_usage: NextUsage) -> Reply:
    body = call.body if isinstance(call.body, dict) else {}
    if call.path.endswith("/count_tokens"):
        return json_reply({"input_tokens": 1000})
    index, usage = next_usage(cache_write=True, reasoning=False)
    model = str(body.get("model") or "claude-fake")
    message_id = f"msg_fake_{call.run}_{index:04d}"
    request_id = f"req_fake_{call.run}_{index:04d}"
    sent: dict[str, Any] = {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output,
        "service_tier": "standard",
    }
    text = reply_text(index)
    stream = body.get("stream") is True
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": sent,
    }
    if stream:
        # as the API streams: input and cache counts at the start, output 1 there and final
        # in message_delta (which also repeats the input side, as the API does today)
        start = dict(message, content=[], stop_reason=None, usage=dict(sent, output_tokens=1))
        data = sse(
            [
                ("message_start", {"type": "message_start", "message": start}),
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                ("ping", {"type": "ping"}),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text},
                    },
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {k: v for k, v in sent.items() if k != "service_tier"},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
        )
        reply = Reply(200, data, "text/event-stream")
    else:
        reply = json_reply(message)
    reply.headers["request-id"] = request_id  # Claude Code's transcript `requestId`
    reply.index, reply.usage, reply.model, reply.stream = index, usage, model, stream
    reply.sent_usage = sent
    reply.ids = {"request_id": request_id, "message_id": message_id}
    return reply
