"""Anthropic Messages (`POST /v1/messages`, JSON or SSE; `count_tokens`), as Claude Code and
Copilot CLI's anthropic provider speak it.

Usage carries `cache_creation_input_tokens` WITHOUT the `cache_creation` 5-minute/1-hour
split, as gateways and proxies send it: that is what found Claude Code writing a zero split
beside a non-zero total.

A turn whose prompt is `SUBAGENT_PROMPT` is answered with a call of Claude Code's `Agent`
tool (a general-purpose subagent asked `SUBAGENT_TASK`, in the foreground): the subagent's own
model call and the turn's answer after the tool result are plain replies, so one such prompt
is three model calls, one of them a subagent's."""

from __future__ import annotations

import json
from typing import Any

from tests.real.protocols import Call, NextUsage, Reply, json_reply, reply_text, sse

NAME = "anthropic-messages"
SUBAGENT_PROMPT = "Use a subagent."
SUBAGENT_TASK = "Say hi."
AGENT_TOOL = "Agent"  # Claude Code 2.1's name of its subagent tool (`Task` before)


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
    block: dict[str, Any] = {"type": "text", "text": text}
    if _asks_for_subagent(body):
        task = {
            "description": "Say hi",
            "prompt": SUBAGENT_TASK,
            "subagent_type": "general-purpose",
            "run_in_background": False,  # the turn waits for it: the run ends with it
        }
        block = {"type": "tool_use", "id": f"toolu_fake_{call.run}_{index:04d}", "name": AGENT_TOOL}
        block["input"] = task
    stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": sent,
    }
    if stream:
        # as the API streams: input and cache counts at the start, output 1 there and final
        # in message_delta (which also repeats the input side, as the API does today)
        start = dict(message, content=[], stop_reason=None, usage=dict(sent, output_tokens=1))
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": text}
        else:
            opened = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        data = sse(
            [
                ("message_start", {"type": "message_start", "message": start}),
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": opened},
                ),
                ("ping", {"type": "ping"}),
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
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


def _asks_for_subagent(body: dict[str, Any]) -> bool:
    """The turn's prompt is `SUBAGENT_PROMPT` and no tool result has come back since (the
    subagent's own call, and the turn's call after it, are answered in words)."""
    if not any(
        isinstance(t, dict) and t.get("name") == AGENT_TOOL for t in body.get("tools") or []
    ):
        return False
    asked = False
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue  # Claude Code 2.1 also sends `system` messages between the turns
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for b in blocks if isinstance(blocks, list) else []:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "tool_result":
                asked = False
            elif b.get("type") == "text" and isinstance(b.get("text"), str):
                # the prompt is the turn's last text block (reminders come before it)
                asked = b["text"].strip() == SUBAGENT_PROMPT
    return asked
