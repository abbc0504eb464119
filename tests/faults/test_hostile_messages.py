"""10,000 hostile LSP messages to one real sidecar, over its real stdin.

After a normal `initialize`/`initialized`, a seeded generator writes well-framed messages of
every hostile kind: wrong types for every field of every method's params, odd ids, unknown
methods, bodies that are not JSON, batches, invalid UTF-8, lone surrogates, NaN, 1e309, MBs
of string, thousands of nesting levels, Content-Length lies, hostile settings and hostile
answers to the sidecar's own `workspace/configuration` requests, a second `initialize` and
`initialized`. Each message carries what it must cause, so every answer is checked:

- every request (a usable id and a method) is answered exactly once, in time;
- what has no usable id is answered with id null where JSON-RPC says so (-32700, -32600),
  exactly as often as such messages were sent;
- the sidecar never exits, its memory stays bounded, its log stays short and traceback-free,
  and `initialized` sent twice does not double what reaches the editor's log;
- afterwards a valid event is recorded and status shows it with exact totals.

How deep a nesting the sidecar's JSON parser takes depends on the Python version: the test
measures it first and sends nesting just below and beyond it, so every outcome is exact.
`DX_FAULTS_SEED=N` replays a run; the seed is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import sidecar_env

SEED = int(os.environ.get("DX_FAULTS_SEED", "0")) or random.randrange(1, 10**6)
MESSAGES = 10_000
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TOOL = "hostile-ai"  # every generated event's tool; the final check uses another
CHECK_TOOL = "final-check"
SETTINGS: dict[str, Any] = {
    "email": "dev@example.com",
    "tool": TOOL,
    "flush": {"enabled": False, "delaySeconds": 0},
}
WRITE_DEADLINE = 10.0  # seconds the sidecar may go without reading its stdin
ANSWER_DEADLINE = 30.0  # seconds from the last message to the last answer
MAX_HWM_KIB = 200 * 1024
MAX_RSS_KIB = 120 * 1024
MAX_LOG_LINES = 200
MAX_ERROR_MESSAGE = 1000  # characters: an error quotes a value's start, never all of it
#: nesting CPython's json parses anywhere, and cannot; the sidecar's own limit is measured
SHALLOW, DEEP = 400, 2_000
PROBED_DEPTHS = range(800, 1300)
#: how the answer to a request must look: a result, anything, or an error code
RESULT, ANY = "result", "any"

#: placeholders, replaced in the encoded body by what json.dumps does not write
_RAW = re.compile(rb'"@@(1E309|-1E309|BAD\d+|DEEP\d+)@@"')
BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\xe2\x82")
INF_LITERAL, NEG_INF_LITERAL = "@@1E309@@", "@@-1E309@@"
CONTENT_TYPE = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"


def bad_utf8(n: int) -> str:
    return f"@@BAD{n}@@"


def deep(depth: int) -> str:
    """`depth` levels of nesting (json.dumps itself cannot write a thousand)."""
    return f"@@DEEP{depth}@@"


def _raw(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if name.startswith(b"BAD"):
        return b'"x' + BAD_UTF8[int(name[3:]) % len(BAD_UTF8)] + b'y"'
    if name.startswith(b"DEEP"):
        levels = range(int(name[4:]))  # as `nested`: objects and arrays in turn
        opening = b"".join(b"[" if i % 2 else b'{"k": ' for i in reversed(levels))
        return opening + b"0" + b"".join(b"]" if i % 2 else b"}" for i in levels)
    return name.lower()


def encode(message: Any) -> bytes:
    return _RAW.sub(_raw, json.dumps(message).encode())


def has_bad_utf8(message: Any) -> bool:
    return "@@BAD" in json.dumps(message)


def frame(body: bytes, header: bytes | None = None) -> bytes:
    if header is None:
        header = b"Content-Length: %d\r\n" % len(body)
    return header + b"\r\n" + body


def nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(body: bytes) -> int:
    """How deeply the JSON text `body` nests objects and arrays."""
    depth = deepest = 0
    for char in _STRING.sub(b'""', body):
        if char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest


def id_key(msg_id: Any) -> str:
    return json.dumps(msg_id)


@dataclass
class Expect:
    """What one message must cause."""

    key: str | None = None  # the id (as JSON) that must be answered exactly once
    code: int | str = ANY  # RESULT, ANY or the error code of that answer
    prefix: str | None = None  # how the error message starts
    nulls: tuple[int, ...] = ()  # the errors with id null it must cause
    sent_at: float = 0.0
    head: bytes = b""  # how the message began, for failure messages


# -- hostile values -------------------------------------------------------------------


def wrong_values(rng: random.Random) -> list[Any]:
    """A value of every JSON type, and odd ones."""
    return [
        None,
        True,
        False,
        5,
        -1,
        1.5,
        10**30,
        [],
        [1, "a"],
        {},
        {"a": [1]},
        INF_LITERAL,
        float("nan"),
        float("inf"),
        float("-inf"),
        nested(rng.randrange(5, 60)),
    ]


def hostile_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            *wrong_values(rng),
            "",
            "x" * rng.randrange(1, 3000),
            "\udc80",
            "\ud800x",
            "\U0001f600" * 10,
        ]
    )


Out = tuple[bytes, Expect]


class Hostile:
    """The message kinds; each yields framed bytes and what they must cause."""

    def __init__(self, rng: random.Random, pid: int, parse_limit: int) -> None:
        self.rng = rng
        self.pid = pid
        self.parse_limit = parse_limit  # the deepest nesting the sidecar parses
        self.n = 0
        #: requests pygls runs as tasks, which a cancel may still win (-32800)
        self.cancellable: list[Expect] = []
        self.empty_id_sent = False

    def next_id(self) -> int:
        self.n += 1
        return 1000 + self.n

    def request(
        self,
        method: Any,
        params: Any = None,
        *,
        code: int | str = ANY,
        prefix: str | None = None,
        msg_id: Any = None,
        with_params: bool = True,
    ) -> Out:
        msg_id = self.next_id() if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if with_params:
            message["params"] = params
        if has_bad_utf8(message):  # not UTF-8 text: not parsed, so the id is unknown
            return frame(encode(message)), Expect(nulls=(PARSE_ERROR,))
        return frame(encode(message)), Expect(id_key(msg_id), code, prefix)

    def notify(self, method: Any, params: Any = None, *, with_params: bool = True) -> Out:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if with_params:
            message["params"] = params
        if has_bad_utf8(message):
            return frame(encode(message)), Expect(nulls=(PARSE_ERROR,))
        return frame(encode(message)), Expect()

    def event(self, **fields: Any) -> dict[str, Any]:
        """Valid whatever the settings (no timestamp: now), apart from `fields`."""
        return {
            "tool": TOOL,
            "event_id": f"h-{self.rng.getrandbits(64):x}",
            "input_tokens": 1,
            **fields,
        }

    # -- dxTelemetry/recordUsage ----------------------------------------------------------

    def record_bad(self) -> Iterator[Out]:
        """One field wrong: the answer is -32602, its message naming that field."""
        rng = self.rng
        name = rng.choice(
            [
                "tool",
                "timestamp",
                "event_id",
                "model",
                "source",
                "input_tokens",
                "output_tokens",
                "cache_write_tokens",
                "cache_read_tokens",
                "spend_cents",
                "cost_usd",
                "metrics",
                "unknown",
                "params",
            ]
        )
        non_null = [v for v in wrong_values(rng) if v is not None]
        named, value = name, hostile_value(rng)
        if name == "params":
            params = rng.choice([None, 5, "x", [], [self.event()], True, nested(30)])
            yield self.request(
                "dxTelemetry/recordUsage", params, code=INVALID_PARAMS, prefix="params: "
            )
            return
        if name in ("tool", "event_id", "model", "source"):
            value = rng.choice([*non_null, "\udc80", "a\udfffb", "\ud83d", "s" * 201, bad_utf8(1)])
            if name != "tool" and rng.random() < 0.1:
                value = ""
        elif name == "timestamp":
            value = rng.choice(
                [
                    *non_null,
                    "yesterday",
                    "\udc80",
                    "2026-01-15T09:30:00",
                    "9999-12-31T23:59:59Z",
                    "1970-01-01T00:00:00Z",
                    "2026-02-30T00:00:00Z",
                    "T" * 5000,
                ]
            )
        elif name.endswith("_tokens"):
            value = rng.choice(
                [v for v in non_null if not (isinstance(v, int) and 0 <= v <= 10**12)]
                + [10**12 + 1, -(10**20), "12", 1e300, NEG_INF_LITERAL]
            )
        elif name in ("spend_cents", "cost_usd"):
            value = rng.choice(
                [v for v in non_null if v not in (5, 1.5)] + ["1", 1e13, NEG_INF_LITERAL]
            )
        elif name == "metrics":
            key = rng.choice(["x", "ok.key-1"])
            value, named = rng.choice(
                [
                    ([1, 2], "metrics"),
                    ("lots", "metrics"),
                    (5, "metrics"),
                    (True, "metrics"),
                    ({"bad key": 1}, "metrics"),
                    ({"\udc80": 1}, "metrics"),
                    ({"": 1}, "metrics"),
                    ({"k" * 65: 1}, "metrics"),
                    ({f"k{i}": 1 for i in range(33)}, "metrics"),
                    ({"events": 1}, "metrics.events"),
                    ({key: -1}, f"metrics.{key}"),
                    ({key: "5"}, f"metrics.{key}"),
                    ({key: None}, f"metrics.{key}"),
                    ({key: float("nan")}, f"metrics.{key}"),
                    ({key: INF_LITERAL}, f"metrics.{key}"),
                    ({key: {}}, f"metrics.{key}"),
                    ({key: nested(rng.randrange(10, SHALLOW))}, f"metrics.{key}"),
                ]
            )
        else:  # a field no event has
            named = rng.choice(["bad key!", "\udc80", "Tool", "input-tokens", "k" * 300])
        event = self.event(**{named if name == "unknown" else name: value})
        if name == "cost_usd" and rng.random() < 0.3:  # both given: cost_usd is the one named
            event.update(spend_cents=1, cost_usd=0.01)
        prefix = f"{named}: " if len(named) <= 100 else named[:97] + "...: "  # cut
        yield self.request("dxTelemetry/recordUsage", event, code=INVALID_PARAMS, prefix=prefix)

    def record_valid(self) -> Iterator[Out]:
        """Odd but valid: a result (`recorded: false` while hostile settings disable)."""
        fields = self.rng.choice(
            [
                {"model": "\U0001f600 model \u00e9"},
                {"input_tokens": 10**12, "output_tokens": 12.0},
                {"metrics": {f"m{i}": i for i in range(32)}},
                {"event_id": "e" * 200, "source": "s" * 100},
                {"spend_cents": 0.37, "source": "api"},
                {"cost_usd": 0, "model": "m" * 200},
            ]
        )
        yield self.request("dxTelemetry/recordUsage", self.event(**fields), code=RESULT)

    # -- dxTelemetry/status, workspace/executeCommand --------------------------------------

    def status(self) -> Iterator[Out]:
        data, expect = self.request(
            "dxTelemetry/status",
            hostile_value(self.rng),
            code=RESULT,
            with_params=self.rng.random() < 0.8,
        )
        self.cancellable.append(expect)
        yield data, expect

    def command(self) -> Iterator[Out]:
        rng = self.rng
        command = rng.choice(
            ["dxTelemetry.flushNow", "dxTelemetry.resendDay", "dxTelemetry.markPushed"]
        )
        shape = rng.random()
        if shape < 0.15:  # params that are not ExecuteCommandParams
            params = rng.choice([None, 5, "x", [], [command], {"arguments": []}, {"command": 5}])
            yield self.request(
                "workspace/executeCommand",
                params,
                code=INVALID_PARAMS,
                with_params=rng.random() < 0.8,
            )
            return
        if shape < 0.25:  # a command nobody has
            name = rng.choice(["dxTelemetry.nope", "", "x" * 5000, "\udc80", command.upper()])
            yield self.request(
                "workspace/executeCommand", {"command": name, "arguments": []}, code=INVALID_PARAMS
            )
            return
        arguments = rng.choice(
            [
                None,
                5,
                -1.5,
                "2026-01-01",
                True,
                {"date": "2026-01-01", "tool": TOOL},
                INF_LITERAL,
                [],
                [None],
                [1, 2],
                ["2026-01-01"],
                ["x", "y", "z"],
                [{"date": 5}],
                [{"date": "2026-01-01"}],
                [nested(rng.randrange(10, SHALLOW))],
                ["2026-13-45", TOOL],
                ["2026-01-01", ""],
                ["2026-01-01", 5],
                ["2026-01-01", "t" * 101],
                ["\udc80", TOOL],
                [float("nan"), INF_LITERAL],
                [bad_utf8(2), TOOL],
            ]
        )
        params: dict[str, Any] = {"command": command}
        if arguments is not None or rng.random() < 0.5:
            params["arguments"] = arguments
        if arguments is not None and not isinstance(arguments, list):
            code: int | str = INVALID_PARAMS
        elif command == "dxTelemetry.flushNow":
            code = ANY  # a push cycle: its report, or why the settings block it
        else:
            code = INVALID_PARAMS  # none of these is a date and a tool
        data, expect = self.request("workspace/executeCommand", params, code=code)
        if code == ANY:
            self.cancellable.append(expect)
        yield data, expect

    def day_command(self) -> Iterator[Out]:
        """resendDay / markPushed with a real date and tool: refused (-32803) or done."""
        command = self.rng.choice(["dxTelemetry.resendDay", "dxTelemetry.markPushed"])
        arguments = self.rng.choice(
            [["2020-01-01", TOOL], [{"date": "2020-01-01", "tool": TOOL}], ["2999-01-01", "t"]]
        )
        yield self.request("workspace/executeCommand", {"command": command, "arguments": arguments})

    # -- settings ------------------------------------------------------------------------

    def settings(self) -> Iterator[Out]:
        rng = self.rng
        keys = [
            "enabled",
            "email",
            "tool",
            "instanceUrl",
            "dayBoundary",
            "flush",
            "flush.delaySeconds",
            "flush.backfillDays",
            "flush.enabled",
            "reportInactiveDays",
            "modelBreakdowns",
            "retentionDays",
            "spend",
            "sources",
            "sources.claudeCode.path",
        ]
        section: dict[str, Any] = {
            k: hostile_value(rng) for k in rng.sample(keys, rng.randrange(1, 6))
        }
        if rng.random() < 0.2:
            section["sources"] = {
                "claudeCode": hostile_value(rng),
                "codex": {"tool": 5, "path": []},
            }
        if rng.random() < 0.05:  # thousands of keys nobody knows
            section.update({f"unknown{i}.{rng.random()}": i for i in range(2000)})
        params = rng.choice(
            [
                {"settings": {"dxTelemetry": section}},
                {"settings": {"dxTelemetry": section}},
                {"settings": {"dxTelemetry": hostile_value(rng)}},
                {"settings": hostile_value(rng)},  # no section: the sidecar asks for it
                {"settings": {}},
                hostile_value(rng),
            ]
        )
        yield self.notify(
            "workspace/didChangeConfiguration", params, with_params=rng.random() < 0.95
        )

    # -- other methods -------------------------------------------------------------------

    def standard(self) -> Iterator[Out]:
        """Standard LSP methods with params outside their schema (or inside it). As requests:
        the sidecar serves none of them (-32601), and notifications take no id (-32600)."""
        rng = self.rng
        method, code = rng.choice(
            [
                ("textDocument/hover", METHOD_NOT_FOUND),
                ("textDocument/completion", METHOD_NOT_FOUND),
                ("textDocument/definition", METHOD_NOT_FOUND),
                ("workspace/symbol", METHOD_NOT_FOUND),
                ("textDocument/semanticTokens/full", METHOD_NOT_FOUND),
                ("textDocument/didOpen", METHOD_NOT_FOUND),  # no text sync: not served
                ("textDocument/didChange", METHOD_NOT_FOUND),
                ("textDocument/didClose", METHOD_NOT_FOUND),
                ("textDocument/didSave", METHOD_NOT_FOUND),
                ("window/workDoneProgress/cancel", METHOD_NOT_FOUND),
                ("workspace/didChangeWorkspaceFolders", METHOD_NOT_FOUND),
                ("workspace/didChangeWatchedFiles", METHOD_NOT_FOUND),
                ("$/setTrace", INVALID_REQUEST),
            ]
        )
        params = rng.choice(
            [
                hostile_value(rng),
                {"textDocument": 5, "position": {"line": "x"}},
                {"value": 42},
                {"value": "verbose"},
                {"token": []},
                {"event": {"added": 5}},
                {
                    "textDocument": {
                        "uri": f"file:///h/{self.n}.py",
                        "languageId": "python",
                        "version": 1,
                        "text": "x" * rng.randrange(1, 50_000),
                    }
                },
                {"textDocument": {"uri": "file:///nope", "version": 2}, "contentChanges": [5]},
            ]
        )
        if rng.random() < 0.6:
            yield self.request(method, params, code=code)
        else:
            yield self.notify(method, params)

    def unknown_method(self) -> Iterator[Out]:
        rng = self.rng
        method = rng.choice(
            [
                "dxTelemetry/nope",
                "dxtelemetry/status",
                "dxTelemetry/recordUsage ",
                "",
                "foo",
                "$/foo",
                "$/dxTelemetry/status",
                "textDocument/nope",
                "rpc.discover",
                "__init__",
                "\udc80",
                "x" * rng.randrange(100, 20_000),
            ]
        )
        if rng.random() < 0.6:
            params = hostile_value(rng) if rng.random() < 0.5 else {}
            yield self.request(method, params, code=METHOD_NOT_FOUND)
        else:
            yield self.notify(method, {})

    def request_like(self) -> Iterator[Out]:
        """Request methods sent as notifications (nothing to answer), notification methods
        sent with an id (a request: answered once)."""
        rng = self.rng
        if rng.random() < 0.5:
            method, params = rng.choice(
                [
                    ("dxTelemetry/status", {}),
                    ("dxTelemetry/recordUsage", self.event(tool="hostile-notification")),
                    ("workspace/executeCommand", {"command": "dxTelemetry.flushNow"}),
                    ("textDocument/hover", {}),
                    (
                        "initialize",
                        {"processId": None, "capabilities": {}, "initializationOptions": 5},
                    ),
                ]
            )
            yield self.notify(method, params)
        else:
            method, code = rng.choice(
                [
                    ("initialized", INVALID_REQUEST),
                    ("workspace/didChangeConfiguration", INVALID_REQUEST),
                    ("$/cancelRequest", INVALID_REQUEST),
                    ("$/setTrace", INVALID_REQUEST),
                    ("exit", INVALID_REQUEST),  # as a request it must not end anything
                    ("textDocument/didOpen", METHOD_NOT_FOUND),
                    ("window/logMessage", METHOD_NOT_FOUND),  # the server's to send
                ]
            )
            yield self.request(method, hostile_value(rng), code=code)

    def no_params(self) -> Iterator[Out]:
        method, code, prefix = self.rng.choice(
            [
                ("dxTelemetry/status", RESULT, None),
                ("dxTelemetry/recordUsage", INVALID_PARAMS, "params: "),
                ("workspace/executeCommand", INVALID_PARAMS, None),
                ("textDocument/hover", METHOD_NOT_FOUND, None),
                ("initialize", INVALID_REQUEST, None),  # the second one
                ("dxTelemetry/none", METHOD_NOT_FOUND, None),
            ]
        )
        yield self.request(
            method, None, code=code, prefix=prefix, with_params=self.rng.random() < 0.7
        )

    def cancel(self) -> Iterator[Out]:
        rng = self.rng
        if self.cancellable and rng.random() < 0.3:  # in flight: still answered exactly once
            target = self.cancellable.pop()
            target.code = ANY  # its result, or -32800
            yield self.notify("$/cancelRequest", {"id": json.loads(target.key or "0")})
            return
        params = rng.choice(
            [{"id": 10**9 + self.n}, {"id": "nope"}, {"id": None}, {"id": {}}, {}, 5, [], None]
        )
        yield self.notify("$/cancelRequest", params, with_params=rng.random() < 0.9)

    # -- values no handler should ever see -----------------------------------------------

    def huge(self) -> Iterator[Out]:
        """MBs of string (under the 8 MiB limit) in every kind of place."""
        rng = self.rng
        char = rng.choice("ab\u00e9\U0001f600")
        text = char * (rng.randrange(1 << 20, 7 << 20) // (len(json.dumps(char)) - 2))
        where = rng.randrange(6)
        if where == 0:
            name = rng.choice(["tool", "model", "event_id", "timestamp", "source"])
            yield self.request(
                "dxTelemetry/recordUsage",
                self.event(**{name: text}),
                code=INVALID_PARAMS,
                prefix=f"{name}: ",
            )
        elif where == 1:
            yield self.request("dxTelemetry/status", {"blob": text}, code=RESULT)
        elif where == 2:
            yield self.notify(
                "workspace/didChangeConfiguration", {"settings": {"dxTelemetry": {"email": text}}}
            )
        elif where == 3:
            yield self.request(text, {}, code=METHOD_NOT_FOUND)
        elif where == 4:
            yield self.request("dxTelemetry/status", {}, code=RESULT, msg_id=text)
        else:
            yield self.request("workspace/executeCommand", {"command": text}, code=INVALID_PARAMS)

    def deep(self) -> Iterator[Out]:
        rng = self.rng
        where = rng.randrange(5)
        # at the parser's limit too: the deepest a handler can meet, where one `repr` of it
        # raises RecursionError; a level more is a parse error
        limit = self.parse_limit
        depth = rng.choice(
            [
                rng.randrange(50, SHALLOW),
                rng.randrange(limit - 25, limit),
                rng.randrange(DEEP, 20_000),
            ]
        )
        value = deep(depth)
        if where == 0:
            data, expect = self.request(
                "dxTelemetry/recordUsage",
                self.event(model=value),
                code=INVALID_PARAMS,
                prefix="model: ",
            )
        elif where == 1:
            data, expect = self.request("dxTelemetry/status", value, code=RESULT)
        elif where == 2:
            data, expect = self.request(
                "workspace/executeCommand",
                {"command": "dxTelemetry.resendDay", "arguments": [value, TOOL]},
                code=INVALID_PARAMS,
            )
        elif where == 3:  # the id: parsed, it is unusable
            data = frame(encode({"jsonrpc": "2.0", "id": value, "method": "dxTelemetry/status"}))
            expect = Expect(nulls=(INVALID_REQUEST,))
        else:  # under a setting's key, so that its problem quotes it
            section = rng.choice([{"email": value}, {"flush": {"delaySeconds": value}}, [value]])
            data, expect = self.notify(
                "workspace/didChangeConfiguration", {"settings": {"dxTelemetry": section}}
            )
        if json_depth(data.split(b"\r\n\r\n", 1)[1]) > limit:  # a parse error, id unknown
            expect = Expect(nulls=(PARSE_ERROR,))
        yield data, expect

    def nonfinite(self) -> Iterator[Out]:
        rng = self.rng
        value = rng.choice(
            [float("nan"), float("inf"), float("-inf"), INF_LITERAL, NEG_INF_LITERAL]
        )
        where = rng.randrange(5)
        if where == 0:
            name = rng.choice(["input_tokens", "spend_cents", "cost_usd", "output_tokens"])
            yield self.request(
                "dxTelemetry/recordUsage",
                self.event(**{name: value}),
                code=INVALID_PARAMS,
                prefix=f"{name}: ",
            )
        elif where == 1:
            yield self.request(
                "dxTelemetry/recordUsage",
                self.event(metrics={"x": value}),
                code=INVALID_PARAMS,
                prefix="metrics.x: ",
            )
        elif where == 2:  # a float id is not an LSP id
            body = encode({"jsonrpc": "2.0", "id": value, "method": "dxTelemetry/status"})
            yield frame(body), Expect(nulls=(INVALID_REQUEST,))
        elif where == 3:
            section = {"flush": {"delaySeconds": value}, "tool": value, "retentionDays": value}
            yield self.notify(
                "workspace/didChangeConfiguration", {"settings": {"dxTelemetry": section}}
            )
        else:
            yield self.request("dxTelemetry/status", {"x": value}, code=RESULT)

    def invalid_utf8(self) -> Iterator[Out]:
        """Raw invalid UTF-8 inside a string: not JSON text, so the id is unusable."""
        rng = self.rng
        bad = bad_utf8(rng.randrange(100))
        yield rng.choice(
            [
                self.request("dxTelemetry/recordUsage", self.event(model=bad)),
                self.request("dxTelemetry/status", {"x": bad}),
                self.request(bad, {}),
                self.request("dxTelemetry/status", {}, msg_id=bad),
                self.notify("workspace/didChangeConfiguration", {"settings": {"dxTelemetry": bad}}),
            ]
        )

    def surrogates(self) -> Iterator[Out]:
        """Lone surrogate escapes: valid JSON, not Unicode text; refused where it matters."""
        rng = self.rng
        lone = rng.choice(["\udc80", "\ud800", "x\udfff", "\ud83d\ud83d"])
        where = rng.randrange(6)
        if where < 3:
            name = rng.choice(["tool", "event_id", "model", "source"])
            yield self.request(
                "dxTelemetry/recordUsage",
                self.event(**{name: lone}),
                code=INVALID_PARAMS,
                prefix=f"{name}: ",
            )
        elif where == 3:
            yield self.request(
                "dxTelemetry/status", {}, code=RESULT, msg_id=f"id-{self.next_id()}{lone}"
            )
        elif where == 4:
            yield self.request(f"dxTelemetry/{lone}", {}, code=METHOD_NOT_FOUND)
        else:
            section = {rng.choice(["tool", "email", "instanceUrl", "sources.codex.path"]): lone}
            yield self.notify(
                "workspace/didChangeConfiguration", {"settings": {"dxTelemetry": section}}
            )

    # -- ids and envelopes ---------------------------------------------------------------

    def odd_id(self) -> Iterator[Out]:
        rng = self.rng
        if not self.empty_id_sent:  # "" is a string id like any other
            self.empty_id_sent = True
            yield self.request("dxTelemetry/status", {}, code=RESULT, msg_id="")
            return
        kind = rng.randrange(3)
        if kind == 0:  # neither a string nor an integer: unusable, answered with id null
            msg_id = rng.choice(
                [1.5, 2.0, -0.0, True, False, None, {}, {"id": 1}, [], [1], INF_LITERAL]
            )
            body = encode({"jsonrpc": "2.0", "id": msg_id, "method": "dxTelemetry/status"})
            yield frame(body), Expect(nulls=(INVALID_REQUEST,))
        elif kind == 1:  # integers and strings of every size: answered with that very id
            self.n += 1
            msg_id = rng.choice(
                [
                    10**30 + self.n,
                    -self.n,
                    2**63 + self.n,
                    -(2**64) - self.n,
                    str(self.n),
                    f"s-{self.n}-" + "i" * rng.randrange(1000, 100_000),
                    f" {self.n}\u00e9\U0001f600",
                    f"e{self.n}",
                ]
            )
            yield self.request("dxTelemetry/status", {}, code=RESULT, msg_id=msg_id)
        else:  # more digits than Python's int parsing takes: not parsed
            body = b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"dxTelemetry/status"}'
            yield frame(body), Expect(nulls=(PARSE_ERROR,))

    def not_json(self) -> Iterator[Out]:
        rng = self.rng
        choice = rng.randrange(3)
        if choice == 0:
            body = rng.choice(
                [
                    b"",
                    b"   ",
                    b"{",
                    b"hello",
                    b"{'jsonrpc': '2.0'}",
                    b'{"jsonrpc":"2.0","id":1,}',
                    b'{"jsonrpc":"2.0","id":7,"method":"dxTelemetry/status"',
                    b"\x00\x01\x02",
                    b"\xef\xbb\xbf{}",  # a byte order mark: LSP is UTF-8 without one
                    b"[1, 2",
                    b"tru",
                    b'{"a": 1} {"b": 2}',
                    b'{"id": 5, "method": "x"}garbage',
                    json.dumps({"jsonrpc": "2.0", "id": 9, "method": "x"}).encode("utf-16-le"),
                    bytes(rng.getrandbits(8) for _ in range(40)) + b"{",
                ]
            )
            yield frame(body), Expect(nulls=(PARSE_ERROR,))
        elif choice == 1:  # JSON, but not an object
            body = rng.choice([b"null", b"5", b'"text"', b"true", b"[]", b"1e309", b"NaN", b"{}"])
            yield frame(body), Expect(nulls=(INVALID_REQUEST,))
        else:  # a batch: LSP has none; one invalid request
            inner = encode(
                {"jsonrpc": "2.0", "id": self.next_id(), "method": "dxTelemetry/status"}
            ).decode()
            body = rng.choice(["[]", f"[{inner}]", f"[{inner}, {inner}]", "[1, 2, 3]"]).encode()
            yield frame(body), Expect(nulls=(INVALID_REQUEST,))

    def bad_jsonrpc(self) -> Iterator[Out]:
        rng = self.rng
        version = rng.choice([None, "1.0", 2.0, 2, "2.0 ", "", [], "missing"])
        msg_id = self.next_id()
        message: dict[str, Any] = {"id": msg_id, "method": "dxTelemetry/status", "params": {}}
        if version != "missing":
            message["jsonrpc"] = version
        shape = rng.randrange(3)
        if shape == 0:  # a request: answered with its id
            yield frame(encode(message)), Expect(id_key(msg_id), INVALID_REQUEST)
            return
        if shape == 1:
            del message["id"]  # a notification, invalid: answered with id null
        else:
            message["jsonrpc"] = "2.0"
            del message["method"]  # neither request, notification nor response
        yield frame(encode(message)), Expect(nulls=(INVALID_REQUEST,))

    def fake_response(self) -> Iterator[Out]:
        """Answers to requests the sidecar never sent: ignored."""
        message = self.rng.choice(
            [
                {"jsonrpc": "2.0", "id": 12345, "result": 1},
                {"jsonrpc": "2.0", "id": "nobody", "error": {"code": 1, "message": "x"}},
                {"jsonrpc": "2.0", "id": 6, "error": 5},
                {"jsonrpc": "2.0", "id": 7, "result": 1, "error": {}},
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "x"}},
            ]
        )
        yield frame(encode(message)), Expect()

    def framing(self) -> Iterator[Out]:
        """Headers that lie or make no sense; whatever follows must be read as usual."""
        rng = self.rng
        kind = rng.choices(range(4), (45, 30, 22, 3))[0]
        if kind == 0:  # Content-Length shorter than the body: the rest precedes the next frame
            text = "x" * rng.choice([0, 10, 2000, 1 << 20])
            body = encode(
                {
                    "jsonrpc": "2.0",
                    "id": self.next_id(),
                    "method": "dxTelemetry/status",
                    "params": {"t": text},
                }
            )
            cut = rng.randrange(0, len(body) - 1)
            yield frame(body, b"Content-Length: %d\r\n" % cut), Expect(nulls=(PARSE_ERROR,))
        elif kind == 1:  # no Content-Length, or one nobody can use: the body is not read
            header = rng.choice(
                [
                    CONTENT_TYPE,
                    b"Content-Length: " + b"9" * 5000 + b"\r\n",
                    b"Content-Length: 99999999999\r\n",
                    b"Content-Length: -5\r\n",
                    b"Content-Length: 0x10\r\n",
                    b"Content-Length: 1e3\r\n",
                    b"Content-Length 12\r\n",
                ]
            )
            body = encode({"jsonrpc": "2.0", "id": self.next_id(), "method": "dxTelemetry/status"})
            yield frame(body, header), Expect()
        elif kind == 2:  # headers LSP allows, in any case and order: read as usual
            data, expect = self.request("dxTelemetry/status", {}, code=RESULT)
            body = data.split(b"\r\n\r\n", 1)[1]
            header = rng.choice(
                [
                    b"content-length: %d\r\n" + CONTENT_TYPE.lower(),
                    CONTENT_TYPE + b"Content-Length:%d\r\n",
                    b"CONTENT-LENGTH:   %d  \r\n",
                ]
            )
            yield frame(body, header % len(body)), expect
        else:  # too large to read: skipped, answered with id null
            body = encode(
                {"jsonrpc": "2.0", "id": self.next_id(), "method": "x", "params": "y" * (9 << 20)}
            )
            yield frame(body), Expect(nulls=(INVALID_REQUEST,))

    def second_initialize(self) -> Iterator[Out]:
        """`initialize` and `initialized` again, hostile, with a live editor (or none)."""
        rng = self.rng
        params = rng.choice(
            [
                {"processId": self.pid, "capabilities": {}, "initializationOptions": {"tool": 5}},
                {"processId": None, "capabilities": 5},
                {"processId": "x", "capabilities": {}},
                {},
                {"processId": self.pid, "capabilities": {}, "rootUri": 7},
            ]
        )
        yield self.request("initialize", params, code=INVALID_REQUEST)  # refused, whatever
        yield self.notify("initialized", rng.choice([{}, 5, "x", [], None, {"a": 1}]))


#: (kind, weight); `huge`, `framing` and `second_initialize` are placed, not drawn
KINDS: list[tuple[str, float]] = [
    ("record_bad", 22),
    ("record_valid", 2),
    ("status", 5),
    ("command", 8),
    ("day_command", 0.5),
    ("settings", 5),
    ("standard", 7),
    ("deep", 2.5),
    ("nonfinite", 3),
    ("invalid_utf8", 3),
    ("surrogates", 4),
    ("unknown_method", 6),
    ("odd_id", 6),
    ("no_params", 4),
    ("request_like", 4),
    ("not_json", 4),
    ("bad_jsonrpc", 3),
    ("fake_response", 1),
    ("cancel", 3),
]
HUGE = 24  # messages of MBs, 12 of them in one burst
FRAMING = 120
SECOND_INITIALIZE = 3


def plan(rng: random.Random) -> list[str]:
    """The kind of each of the MESSAGES messages (second_initialize is two)."""
    names, weights = zip(*KINDS)
    drawn = MESSAGES - HUGE - FRAMING - 2 * SECOND_INITIALIZE
    kinds = rng.choices(names, weights, k=drawn)
    for _ in range(FRAMING):
        kinds.insert(rng.randrange(len(kinds)), "framing")
    for _ in range(HUGE // 2):
        kinds.insert(rng.randrange(len(kinds)), "huge")
    burst = rng.randrange(len(kinds))
    kinds[burst:burst] = ["huge"] * (HUGE - HUGE // 2)
    for _ in range(SECOND_INITIALIZE):
        kinds.insert(rng.randrange(len(kinds) // 10, len(kinds)), "second_initialize")
    return kinds


# -- the raw client -------------------------------------------------------------------


_HEADER = re.compile(
    rb"Content-Length: (\d+)(?:\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8)?"
)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class RawClient:
    """Writes bytes to the sidecar's stdin; reads and sorts everything it writes back."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dx_lsp_telemetry"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=sidecar_env(home, token=None),  # no token: a push can never leave the machine
        )
        self._write_lock = threading.Lock()
        assert self.process.stdin is not None
        self._stdin = self.process.stdin.fileno()
        os.set_blocking(self._stdin, False)
        self.replies: list[tuple[float, dict[str, Any]]] = []
        self.log_messages: list[str] = []
        self.stderr_lines: list[str] = []
        self.server_requests = 0
        self.bad_output: list[bytes] = []
        self.final = False  # from now on, settings pulled by the sidecar are the clean ones
        self._pull_answers = 0
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(self, data: bytes) -> None:
        with self._write_lock:
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        """All of `data`, or an AssertionError naming what the sidecar said: a sidecar that
        stops reading its stdin must fail the test, not hang it."""
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_DEADLINE
        while view:
            if not select.select([], [self._stdin], [], 0.5)[1]:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(
                        f"the sidecar stopped reading stdin (exit code {self.process.poll()}):\n"
                        + self.stderr_tail()
                    )
                continue
            try:
                view = view[os.write(self._stdin, view[: 1 << 16]) :]
            except BlockingIOError:
                continue
            deadline = time.monotonic() + WRITE_DEADLINE

    def stderr_tail(self) -> str:
        return "\n".join(line[:300] for line in self.stderr_lines[-40:])

    def send(self, message: dict[str, Any]) -> None:
        self.write(frame(json.dumps(message).encode()))

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        buf = b""
        while chunk := stream.read1(1 << 16):
            buf += chunk
            while (end := buf.find(b"\r\n\r\n")) >= 0:
                match = _HEADER.fullmatch(buf[:end])
                if match is None:  # stdout must carry nothing but framed messages
                    self.bad_output.append(buf[:200])
                    return
                start, length = end + 4, int(match.group(1))
                if len(buf) < start + length:
                    break
                body, buf = buf[start : start + length], buf[start + length :]
                try:  # strict JSON: an editor's JSON.parse takes no NaN
                    message = json.loads(body, parse_constant=_not_json)
                except ValueError:
                    self.bad_output.append(body[:200])
                    continue
                self._received(message)

    def _received(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            self.server_requests += 1
            # a helper thread: this one must never block on stdin
            threading.Thread(target=self._answer, args=(message,), daemon=True).start()
        elif "method" in message:
            if message["method"] == "window/logMessage":
                self.log_messages.append(message["params"]["message"])
        else:
            self.replies.append((time.monotonic(), message))

    def _answer(self, request: dict[str, Any]) -> None:
        """The sidecar's `workspace/configuration` requests get hostile answers too."""
        with self._write_lock:  # chosen under the lock: once `final`, only clean answers
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
            if request["method"] != "workspace/configuration" or self.final:
                reply["result"] = (
                    [SETTINGS] if request["method"] == "workspace/configuration" else None
                )
            else:
                self._pull_answers += 1
                variants: list[dict[str, Any]] = [
                    {"result": [SETTINGS]},
                    {"result": [{"enabled": "maybe", "flush": 5}]},
                    {"result": 5},
                    {"result": []},
                    {"result": None},
                    {"result": [[1, 2]]},
                    {"error": {"code": -32603, "message": "no"}},
                    {"error": 5},
                    {},
                    {"result": 1, "error": {"code": 1}},
                ]
                reply.update(variants[self._pull_answers % len(variants)])
            with contextlib.suppress(AssertionError):  # the main thread reports it
                self._write_locked(frame(json.dumps(reply).encode()))

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        for line in stream:
            self.stderr_lines.append(line.decode(errors="replace").rstrip("\n"))

    def answer_to(self, msg_id: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, reply in list(self.replies):
                if reply.get("id") == msg_id:
                    return reply
            time.sleep(0.01)
        raise AssertionError(f"no answer to {msg_id!r} in {timeout} s")

    def request(self, msg_id: Any, method: str, params: Any) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return self.answer_to(msg_id)

    def memory_kib(self) -> dict[str, int]:
        text = Path(f"/proc/{self.pid}/status").read_text()
        return {k: int(v) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, re.M)}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for thread in self._threads:
            thread.join(5)


# -- the test -------------------------------------------------------------------------


def test_ten_thousand_hostile_messages_are_each_answered_or_ignored_as_they_should(
    home: Path,
) -> None:
    print(f"hostile messages: seed {SEED} (DX_FAULTS_SEED={SEED} replays it)")
    rng = random.Random(SEED)
    client = RawClient(home)
    started = time.monotonic()
    try:
        init = client.request(
            1,
            "initialize",
            {
                "processId": os.getpid(),
                "capabilities": {"workspace": {"configuration": True}},
                "initializationOptions": SETTINGS,
            },
        )
        assert "result" in init, init
        # no params at all: JSON-RPC allows it; once, everything after it went unanswered
        client.send({"jsonrpc": "2.0", "method": "initialized"})
        assert client.request(2, "dxTelemetry/status", {})["result"]["config"]["ok"] is True

        parse_limit = probe_parse_limit(client)
        first_reply = len(client.replies)
        hostile = Hostile(rng, os.getpid(), parse_limit)
        expects: list[Expect] = []
        kinds = plan(rng)
        sent: Counter[str] = Counter()
        for kind in kinds:
            for data, expect in getattr(hostile, kind)():
                expect.sent_at, expect.head = time.monotonic(), data[:150]
                client.write(data)
                expects.append(expect)
                sent[kind] += 1
        assert sum(sent.values()) == MESSAGES, sent
        sent_all = time.monotonic()

        # every request answered, in time
        wanted = Counter(e.key for e in expects if e.key is not None)

        def missing() -> list[str]:
            got = Counter(
                id_key(r["id"]) for _, r in list(client.replies) if r.get("id") is not None
            )
            return [k for k in wanted if got[k] == 0]

        while missing() and time.monotonic() < sent_all + ANSWER_DEADLINE:
            time.sleep(0.05)
        assert client.process.poll() is None, "the sidecar exited"
        late_keys = set(missing())
        late = [e.head.split(b"\r\n\r\n", 1)[-1][:120] for e in expects if e.key in late_keys]
        assert not late, f"{len(late)} requests never answered: {late[:10]}\n{client.stderr_tail()}"
        answered_at = time.monotonic()
        # errors with id null are written as their messages are read: once a request sent
        # after them all is answered, every one of them is in
        client.request(3, "dxTelemetry/status", {})
        slowest = check_answers(expects, client.replies[first_reply:])

        final_check(client)
        time.sleep(0.5)  # stderr and stdout are read by two threads: let both catch up
        check_second_initialized_not_doubled(client)
        memory = client.memory_kib()
        assert client.process.poll() is None, "the sidecar exited"
        check_log(client)
        print(
            f"hostile messages: {MESSAGES} sent in {sent_all - started:.1f} s, all answered "
            f"{answered_at - sent_all:.1f} s later (slowest answer {slowest:.1f} s); "
            f"{client.server_requests} settings pulls; JSON parsed to depth {parse_limit}; "
            f"VmHWM {memory['VmHWM'] // 1024} MiB, VmRSS {memory['VmRSS'] // 1024} MiB; "
            f"{len(client.stderr_lines)} stderr lines; kinds {dict(sent)}"
        )
        assert memory["VmHWM"] < MAX_HWM_KIB, memory
        assert memory["VmRSS"] < MAX_RSS_KIB, memory
    finally:
        client.close()


def probe_parse_limit(client: RawClient) -> int:
    """The deepest nesting (of a whole body) the sidecar's JSON parser takes: CPython's
    recurses, its limit depends on the version. Requests of each depth are answered up to
    it, and are parse errors beyond."""
    bodies = {}
    for depth in PROBED_DEPTHS:
        message = {"jsonrpc": "2.0", "id": f"depth-{depth}", "method": "dxTelemetry/status"}
        bodies[depth] = encode({**message, "params": deep(depth)})
        client.write(frame(bodies[depth]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        replies = [r for _, r in list(client.replies)]
        answered = {r["id"] for r in replies if str(r.get("id")).startswith("depth-")}
        unparsed = sum(1 for r in replies if r.get("id") is None)
        if len(answered) + unparsed == len(PROBED_DEPTHS):
            break
        time.sleep(0.05)
    limit = max((d for d in PROBED_DEPTHS if f"depth-{d}" in answered), default=0)
    assert answered == {f"depth-{d}" for d in PROBED_DEPTHS if d <= limit}, "not monotonic"
    assert unparsed == PROBED_DEPTHS.stop - 1 - limit
    assert PROBED_DEPTHS.start < limit < PROBED_DEPTHS.stop - 1, limit
    return json_depth(bodies[limit])


def check_answers(expects: list[Expect], replies: list[tuple[float, dict[str, Any]]]) -> float:
    """Each answer as its message requires; the slowest answer's delay."""
    by_key: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    nulls: Counter[int] = Counter()
    for at, reply in list(replies):
        assert reply.get("jsonrpc") == "2.0", reply
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            assert len(reply["error"]["message"]) <= MAX_ERROR_MESSAGE, str(reply)[:300]
        if reply.get("id") is None:
            assert "error" in reply, reply
            nulls[reply["error"]["code"]] += 1
        else:
            by_key.setdefault(id_key(reply["id"]), []).append((at, reply))
    problems: list[str] = []
    expected_nulls: Counter[int] = Counter()
    slowest = 0.0
    keys = set()
    for e in expects:
        expected_nulls.update(e.nulls)
        if e.key is None:
            continue
        keys.add(e.key)
        answers = by_key.get(e.key, [])
        if len(answers) != 1:
            problems.append(f"{e.key[:60]}: {len(answers)} answers")
            continue
        at, reply = answers[0]
        slowest = max(slowest, at - e.sent_at)
        error = reply.get("error")
        if e.code == RESULT and error is not None:
            problems.append(f"{e.key[:60]}: expected a result, got {str(error)[:200]}")
        elif isinstance(e.code, int):
            if error is None or error["code"] != e.code:
                problems.append(f"{e.key[:60]}: expected error {e.code}, got {str(reply)[:200]}")
            elif e.prefix is not None and not error["message"].startswith(e.prefix):
                problems.append(
                    f"{e.key[:60]}: expected {e.prefix!r}..., got {error['message'][:200]!r}"
                )
    strangers = [k for k in by_key if k not in keys and k != "3"]
    if strangers:
        problems.append(f"answers to ids never sent: {[k[:60] for k in strangers[:5]]}")
    if nulls != expected_nulls:
        texts = Counter(
            f"{r['error']['code']} {r['error']['message'][:50]}"
            for _, r in replies
            if r.get("id") is None
        )
        problems.append(
            f"errors with id null: expected {dict(expected_nulls)}, got {dict(nulls)}: "
            + "; ".join(f"{n} x {t}" for t, n in texts.most_common())
        )
    assert not problems, f"{len(problems)} wrong answers:\n" + "\n".join(problems[:40])
    assert slowest < ANSWER_DEADLINE, slowest
    return slowest


def check_second_initialized_not_doubled(client: RawClient) -> None:
    """Each log record reaches the editor once: no second set of log forwarders."""
    on_stderr = Counter(
        m.group(1)
        for line in client.stderr_lines
        if (m := re.match(r"\S+ \S+ (?:INFO|WARNING|ERROR) dx_lsp_telemetry\S*: (.*)", line))
    )
    forwarded = Counter(
        # as stderr writes it: a lone surrogate as \udc80
        text.encode("utf-8", "backslashreplace").decode().split("\n")[0]
        for text in client.log_messages
    )
    doubled = {t: n for t, n in forwarded.items() if n > on_stderr[t]}
    assert not doubled, f"forwarded more often than logged: {list(doubled.items())[:5]}"


def final_check(client: RawClient) -> None:
    """Clean settings again, then one valid event: recorded, and counted exactly once."""
    with client._write_lock:
        client.final = True
    client.send(
        {
            "jsonrpc": "2.0",
            "method": "workspace/didChangeConfiguration",
            "params": {"settings": {"dxTelemetry": SETTINGS}},
        }
    )
    deadline = time.monotonic() + 15
    while True:
        status = client.request(f"status-{time.monotonic()}", "dxTelemetry/status", {})["result"]
        if status["config"]["problems"] == [] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["config"] == {"ok": True, "destination": "outbox", "problems": []}, status[
        "config"
    ]
    event = {
        "tool": CHECK_TOOL,
        "event_id": f"final-{SEED}",
        "input_tokens": 1234,
        "output_tokens": 56,
        "cache_write_tokens": 7,
        "cache_read_tokens": 89,
        "spend_cents": 1.25,
    }
    answer = client.request("final", "dxTelemetry/recordUsage", event)
    assert "result" in answer, answer
    assert answer["result"] == {
        "recorded": True,
        "event_id": event["event_id"],
        "date": answer["result"]["date"],
        "tool": CHECK_TOOL,
        "duplicate": False,
    }
    status = client.request("final-status", "dxTelemetry/status", {})["result"]
    assert status["today"]["date"] == answer["result"]["date"]
    assert status["today"]["tools"][CHECK_TOOL] == {
        "events": 1,
        "input_tokens": 1234,
        "output_tokens": 56,
        "cache_write_tokens": 7,
        "cache_read_tokens": 89,
        "spend_cents": 1.25,
    }


def check_log(client: RawClient) -> None:
    """No traceback, no ERROR (a bug, never the client's doing), a bounded number of lines."""
    tracebacks = [i for i, line in enumerate(client.stderr_lines) if line.startswith("Traceback")]
    assert not tracebacks, "\n".join(client.stderr_lines[tracebacks[0] : tracebacks[0] + 30])
    errors = [line for line in client.stderr_lines if re.match(r"\S+ \S+ (ERROR|CRITICAL) ", line)]
    assert not errors, "\n".join(line[:300] for line in errors[:20])
    assert len(client.stderr_lines) < MAX_LOG_LINES, "\n".join(
        line[:200] for line in client.stderr_lines[:60]
    )
    assert client.bad_output == [], client.bad_output
