"""Values quoted in messages, bounded by the length of what is shown.

A value to quote may be hostile: MBs of string, a dict of a million keys, thousands of levels of
nesting. `repr` walks all of it (and raises RecursionError on deep nesting); `show` stops once
`limit` characters are written and never goes deeper than `MAX_DEPTH` levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 6


def show(value: Any, limit: int = 100, *, python: bool = False) -> str:
    """`value` as JSON-like text (`python`: as `repr` would write it, but a top-level string
    in double quotes), cut to `limit` characters with "..."."""
    parts: list[str] = []
    room = limit + 1  # one character more than fits tells that the text was cut

    def put(text: str) -> bool:
        nonlocal room
        parts.append(text[: max(room, 0)])
        room -= len(text)
        return room > 0

    def walk(item: Any, depth: int) -> bool:
        if isinstance(item, str):
            if python and depth:
                return put(repr(item[:room]))
            return put('"') and put(item[:room]) and put('"')
        if item is None:
            return put("None" if python else "null")
        if isinstance(item, bool):
            return put(repr(item) if python else "true" if item else "false")
        if isinstance(item, (int, float)):
            try:
                return put(repr(item))
            except ValueError:  # an int of more digits than Python converts
                return put("<a very large integer>")
        if isinstance(item, Mapping):
            opening, closing = "{", "}"
        elif isinstance(item, (list, tuple)):
            opening, closing = "[", "]"
        else:
            return put(f"<{type(item).__name__}>")
        if depth >= MAX_DEPTH:
            return put(opening + "..." + closing)
        if not put(opening):
            return False
        for i, element in enumerate(item.items() if isinstance(item, Mapping) else item):
            if i and not put(", "):
                return False
            if isinstance(item, Mapping):
                key, element = element
                if not (walk(key, depth + 1) and put(": ")):
                    return False
            if not walk(element, depth + 1):
                return False
        return put(closing)

    walk(value, 0)
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_unicode(text: str) -> bool:
    """False if `text` holds a lone surrogate (JSON's `"\\udc80"`): such a string cannot be
    written as UTF-8, so it must be refused before it reaches a file."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def plural(n: int, noun: str) -> str:
    """`1 file`, `2 files`: a count with its noun (the CLI's words, and the sources' summaries)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
