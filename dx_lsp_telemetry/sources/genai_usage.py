"""Gemini-API usage (`promptTokenCount`, `candidatesTokenCount`, …) in DX's disjoint buckets.

Gemini CLI and its fork Qwen Code both keep the Gemini API's usage shape, whatever the provider:
- the prompt count includes the cached part, which is split out as cache reads (counting both
  is the double count peers make);
- tool-use prompt tokens are input outside the prompt count;
- thoughts are output, but whether the candidates count already holds them depends on who filled
  it in: the Gemini API reports them apart (total = prompt + candidates + thoughts + tool), Qwen
  Code's OpenAI-compatible providers put `completion_tokens` (reasoning included) into candidates
  and repeat the reasoning as thoughts (total = prompt + candidates). The total tells which; without
  one, `thoughts_apart` says what the tool does by default.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Buckets(NamedTuple):
    input: int
    output: int
    cache_read: int


def count(raw: Any, name: str) -> int:
    """A token count: absent or null is 0; an integral float is taken; anything else is refused
    with a message naming the field."""
    value = raw.get(name) if isinstance(raw, dict) else None
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        shown = repr(value)
        raise ValueError(
            f"`{name}` is {shown[:40]}{'…' if len(shown) > 40 else ''}, not a token count"
        )
    return int(value)


def buckets(
    prompt: int,
    candidates: int,
    cached: int,
    thoughts: int,
    tool: int,
    total: int,
    *,
    thoughts_apart: bool,
) -> Buckets:
    """The DX buckets of one response's counts (cache writes: none reported)."""
    cached = min(cached, prompt)
    if thoughts and total:
        thoughts_apart = total >= prompt + candidates + thoughts
    output = candidates + thoughts if thoughts_apart else max(candidates, thoughts)
    return Buckets(prompt - cached + tool, output, cached)
