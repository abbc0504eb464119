"""OpenAI Responses (`POST /v1/responses`, SSE or JSON), as Codex speaks it, and the
`/v1/analytics/codex/turn-costs` call Codex sends to its provider's base URL after a turn."""

from __future__ import annotations

import time
from typing import Any

from tests.real.protocols import Call, NextUsage, Reply, json_reply, reply_text, sse

NAME = "openai-responses"


def handles(call: Call) -> bool:
    return call.method == "POST" and (
        call.path.endswith("/responses") or call.path.endswith("/analytics/codex/turn-costs")
    )


def answer(call: Call, next_usage: NextUsage) -> Reply:
    if call.path.endswith("/turn-costs"):
        return json_reply({})
    body = call.body if isinstance(call.body, dict) else {}
    index, usage = next_usage(cache_write=False, reasoning=True)
    model = str(body.get("model") or "gpt-fake")
    response_id = f"resp_fake_{call.run}_{index:04d}"
    item_id = f"msg_fake_{call.run}_{index:04d}"
    sent = {
        "input_tokens": usage.prompt_total,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt_total + usage.output,
    }
    text = reply_text(index)
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [item],
        "usage": sent,
    }
    stream = body.get("stream") is True
    if stream:
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "response.created",
                {"response": dict(response, status="in_progress", output=[], usage=None)},
            ),
            (
                "response.output_item.added",
                {"output_index": 0, "item": dict(item, status="in_progress", content=[])},
            ),
            (
                "response.content_part.added",
                {
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": dict(part, text=""),
                },
            ),
            (
                "response.output_text.delta",
                {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": text},
            ),
            (
                "response.output_text.done",
                {"item_id": item_id, "output_index": 0, "content_index": 0, "text": text},
            ),
            (
                "response.content_part.done",
                {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part},
            ),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": response}),
        ]
        data = sse(
            (name, dict(payload, type=name, sequence_number=n))
            for n, (name, payload) in enumerate(events)
        )
        reply = Reply(200, data, "text/event-stream")
    else:
        reply = json_reply(response)
    reply.headers["x-request-id"] = f"req_fake_{call.run}_{index:04d}"
    reply.index, reply.usage, reply.model, reply.stream = index, usage, model, stream
    reply.sent_usage = sent
    reply.ids = {"response_id": response_id}
    return reply
