"""One module per model API protocol the real tools speak; each turns a `Call` into a `Reply`
carrying the known usage it reported."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.real.known_usage import KnownUsage

#: hands out the next model call's known usage (only model calls advance the count)
NextUsage = Callable[..., tuple[int, KnownUsage]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str  #: without the query
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  #: the parsed JSON body, or None
    run: str  #: the fake's id for this run, part of every id it makes up


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: set for a model call: what it reported, and under which ids
    index: int | None = None
    usage: KnownUsage | None = None
    model: str | None = None
    stream: bool = False
    sent_usage: Any = None  #: the protocol's own usage object, as sent
    ids: dict[str, str] = field(default_factory=dict)


def json_reply(data: Any, status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status, json.dumps(data).encode(), **kwargs)


def sse(events: Iterable[tuple[str | None, Any]], *, crlf: bool = False) -> bytes:
    """Server-sent events: `event:` lines where a name is given, one `data:` line each."""
    end = "\r\n" if crlf else "\n"
    out = []
    for name, data in events:
        head = f"event: {name}{end}" if name else ""
        out.append(f"{head}data: {json.dumps(data)}{end}{end}")
    return "".join(out).encode()


def reply_text(index: int) -> str:
    """What every fake answer says: nothing a tool would act on, never anything private."""
    return f"Fake reply {index} from the loopback model."
