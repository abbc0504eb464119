"""Gemini API (`/v1beta/models/<model>:generateContent`, `:streamGenerateContent?alt=sse`,
`:countTokens`), as Gemini CLI speaks it with an API key."""

from __future__ import annotations

import re
from typing import Any

from tests.real.protocols import Call, NextUsage, Reply, json_reply, reply_text, sse

NAME = "gemini"
_PATH = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/([^/:]+):(\w+)$")


def handles(call: Call) -> bool:
    return call.method == "POST" and _PATH.match(call.path) is not None


def answer(call: Call, next_usage: NextUsage) -> Reply:
    match = _PATH.match(call.path)
    assert match is not None
    model, verb = match.group(1), match.group(2)
    if verb == "countTokens":
        return json_reply({"totalTokens": 1000})
    if verb not in ("generateContent", "streamGenerateContent"):
        return json_reply({"error": {"code": 404, "message": f"no {verb} here"}}, 404)
    index, usage = next_usage(cache_write=False, reasoning=True)
    response_id = f"fake-{call.run}-{index:04d}"
    sent = {
        "promptTokenCount": usage.prompt_total,  # includes the cached part
        "candidatesTokenCount": usage.output - usage.reasoning,  # excludes thoughts
        "cachedContentTokenCount": usage.cache_read,
        "thoughtsTokenCount": usage.reasoning,
        "totalTokenCount": usage.prompt_total + usage.output,
    }
    text = _text(call.body, index)
    # the requested model echoed, so the chat file (requested) and OTel (modelVersion) agree
    tail: dict[str, Any] = {"modelVersion": model, "responseId": response_id}
    stream = verb == "streamGenerateContent"
    if stream:
        first = dict(tail, candidates=[_candidate(text, None)])
        last = dict(tail, candidates=[_candidate("", "STOP")], usageMetadata=sent)
        reply = Reply(200, sse([(None, first), (None, last)], crlf=True), "text/event-stream")
    else:
        reply = json_reply(dict(tail, candidates=[_candidate(text, "STOP")], usageMetadata=sent))
    reply.index, reply.usage, reply.model, reply.stream = index, usage, model, stream
    reply.sent_usage = sent
    reply.ids = {"response_id": response_id}
    return reply


def _text(body: Any, index: int) -> str:
    """A JSON object where the request asks for JSON (the CLI's own side questions)."""
    config = body.get("generationConfig") if isinstance(body, dict) else None
    if isinstance(config, dict) and config.get("responseMimeType") == "application/json":
        return "{}"
    return reply_text(index)


def _candidate(text: str, finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = finish
    return candidate
