"""OpenAI Chat Completions (`POST /v1/chat/completions`, SSE chunks or JSON), as Copilot CLI's
BYOK openai provider and Aider (through litellm) speak it."""

from __future__ import annotations

import time
from typing import Any

from tests.real.protocols import Call, NextUsage, Reply, json_reply, reply_text, sse

NAME = "openai-chat"


def handles(call: Call) -> bool:
    return call.method == "POST" and call.path.endswith("/chat/completions")


def answer(call: Call, next_usage: NextUsage) -> Reply:
    body = call.body if isinstance(call.body, dict) else {}
    index, usage = next_usage(cache_write=False, reasoning=True)
    model = str(body.get("model") or "gpt-fake")
    completion_id = f"chatcmpl-fake-{call.run}-{index:04d}"
    sent = {
        "prompt_tokens": usage.prompt_total,
        "completion_tokens": usage.output,
        "total_tokens": usage.prompt_total + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }
    text = reply_text(index)
    created = int(time.time())
    head = {"id": completion_id, "created": created, "model": model}
    stream = body.get("stream") is True
    if stream:
        chunk = dict(head, object="chat.completion.chunk")
        chunks: list[tuple[str | None, Any]] = [
            (None, dict(chunk, choices=[_delta({"role": "assistant", "content": ""}, None)])),
            (None, dict(chunk, choices=[_delta({"content": text}, None)])),
            (None, dict(chunk, choices=[_delta({}, "stop")])),
            # the usage chunk of `stream_options.include_usage`: no choices
            (None, dict(chunk, choices=[], usage=sent)),
        ]
        data = sse(chunks) + b"data: [DONE]\n\n"
        reply = Reply(200, data, "text/event-stream")
    else:
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        reply = json_reply(dict(head, object="chat.completion", choices=[choice], usage=sent))
    reply.headers["x-request-id"] = f"req_fake_{call.run}_{index:04d}"
    reply.index, reply.usage, reply.model, reply.stream = index, usage, model, stream
    reply.sent_usage = sent
    reply.ids = {"completion_id": completion_id}
    return reply


def _delta(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
