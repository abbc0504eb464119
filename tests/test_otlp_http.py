"""The receiver's HTTP: what it refuses, how it frames bodies, and that it stays up after each
refusal. Raw sockets where the exact bytes matter, httpx elsewhere; a real sidecar throughout."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.otlp_harness import answer, ledger_usage, post, receiver
from tests.otlp_payloads import claude_api_request, claude_logs, encoded

MIB = 1 << 20


def claude_batch(request_id: str = "req_http", tokens: int = 10) -> dict[str, Any]:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    return claude_logs([claude_api_request(now, request_id, inp=tokens, out=tokens)])


async def exchange(
    url: str, data: bytes, *, read_all: bool = True
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes on one connection; the responses read until the server closes it (or
    the first one only)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    responses = []
    try:
        writer.write(data)
        await writer.drain()
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except asyncio.IncompleteReadError:
                break
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            responses.append((status, headers, body))
            if status != 100 and (not read_all or headers.get("connection") == "close"):
                break
    finally:
        writer.close()
    return responses


def request_bytes(
    body: bytes,
    *,
    path: str = "/v1/logs",
    host: str = "127.0.0.1",
    content_type: str = "application/json",
    extra: str = "",
    chunked: bool = False,
) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\n{extra}\r\n"
    )
    return head.encode() + body


def chunks(body: bytes, size: int = 1000) -> bytes:
    parts = [
        f"{len(body[i : i + size]):x};ext=1\r\n".encode() + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\nX-Trailer: yes\r\n\r\n"


async def still_records(url: str, home: Path, request_id: str) -> None:
    """The receiver is up and records: a valid batch after whatever came before."""
    response = await post(url, "/v1/logs", claude_batch(request_id))
    assert (response.status_code, answer(response)) == (200, {})
    assert any(line["model"] for line in ledger_usage(home))


REFUSED: list[tuple[str, bytes, int, str]] = [
    (
        "a web page's plain-text POST",
        request_bytes(b'{"resourceLogs": []}', content_type="text/plain;charset=UTF-8"),
        415,
        "application/json",
    ),
    (
        "a form POST",
        request_bytes(b"a=1", content_type="application/x-www-form-urlencoded"),
        415,
        "application/json",
    ),
    (
        "protobuf (not bundled)",
        request_bytes(b"\x0a\x00", content_type="application/x-protobuf"),
        415,
        "http/json",
    ),
    (
        "DNS rebinding: another Host",
        request_bytes(b"{}", host="attacker.example"),
        421,
        "127.0.0.1",
    ),
    (
        "DNS rebinding: a Host with our port",
        request_bytes(b"{}", host="attacker.example:4319"),
        421,
        "localhost",
    ),
    ("a Host that starts like loopback", request_bytes(b"{}", host="127.0.0.1.nip.io"), 421, ""),
    ("no Host", b"POST /v1/logs HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400, "Host"),
    ("a browser's Origin", request_bytes(b"{}", extra="Origin: https://a.example\r\n"), 403, ""),
    ("another path", request_bytes(b"{}", path="/v1/profiles"), 404, "/v1/logs"),
    (
        "a CORS preflight",
        b"OPTIONS /v1/logs HTTP/1.1\r\nHost: localhost\r\n"
        b"Access-Control-Request-Method: POST\r\n\r\n",
        405,
        "POST",
    ),
    ("GET", b"GET /v1/logs HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "POST"),
    (
        "a Content-Length over 4 MiB (not read)",
        request_bytes(b"", extra="").replace(b"Content-Length: 0", b"Content-Length: 4194305"),
        413,
        "4194304",
    ),
    ("malformed JSON", request_bytes(b'{"resourceLogs": [}'), 400, "not JSON"),
    ("JSON of the wrong shape", request_bytes(b'{"resourceLogs": {"a": 1}}'), 400, "resourceLogs"),
    (
        "a log record that is not an object",
        request_bytes(
            json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [5]}]}]}).encode()
        ),
        400,
        "resourceLogs[0].scopeLogs[0].logRecords[0]",
    ),
    (
        "a bad span id",
        request_bytes(
            json.dumps(
                {"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "AAECAwQFBgc="}]}]}]}
            ).encode(),
            path="/v1/traces",
        ),
        400,
        "hex",
    ),
    ("a JSON list", request_bytes(b"[]"), 400, "object"),
    ("invalid UTF-8", request_bytes(b'{"a": "\xff"}'), 400, "UTF-8"),
    ("deep nesting", request_bytes(b"[" * 100_000 + b"]" * 100_000), 400, ""),
    (
        "a deflate body",
        request_bytes(zlib.compress(b"{}"), extra="Content-Encoding: deflate\r\n"),
        415,
        "gzip",
    ),
    (
        "a cut gzip body",
        request_bytes(gzip.compress(b"{}" * 1000)[:30], extra="Content-Encoding: gzip\r\n"),
        400,
        "gzip",
    ),
    ("both framings", request_bytes(b"{}", extra="Transfer-Encoding: chunked\r\n"), 400, "both"),
    (
        "a header over 16 KiB",
        request_bytes(b"{}", extra="X-Big: " + "a" * 20_000 + "\r\n"),
        431,
        "",
    ),
    ("a bad chunk size", request_bytes(b"zz\r\n{}\r\n0\r\n\r\n", chunked=True), 400, "chunk"),
    ("not HTTP", b"HELLO\r\n\r\n", 400, "request line"),
]


#: refusals of a body read whole (the connection stays usable)
BODY_READ = {
    "malformed JSON",
    "JSON of the wrong shape",
    "a log record that is not an object",
    "a bad span id",
    "a JSON list",
    "invalid UTF-8",
    "deep nesting",
    "a cut gzip body",
}


async def test_every_refusal_is_clear_sends_no_cors_headers_and_the_receiver_stays_up(
    home: Path,
) -> None:
    async with receiver(home) as (_, url):
        for what, data, status, says in REFUSED:
            responses = await exchange(url, data, read_all=False)
            assert responses, what
            got, headers, body = responses[-1]
            assert got == status, (what, got, body)
            message = json.loads(body)["message"]
            assert says in message, (what, message)
            assert not any(h.startswith("access-control-") for h in headers), what
            # refused before its body was read: the connection cannot go on; after: it can
            read_whole = what in BODY_READ
            assert (headers.get("connection") == "close") is not read_whole, what
            await still_records(url, home, f"req_after_{status}_{len(what)}")
    assert len(ledger_usage(home)) == len(REFUSED)


async def test_a_gzip_bomb_is_refused_and_gzip_bodies_are_taken(home: Path) -> None:
    bomb = gzip.compress(b" " * (64 * MIB))  # 64 KB that inflate to 64 MiB
    assert len(bomb) < 100_000
    async with receiver(home) as (_, url):
        data, headers = encoded(claude_batch("req_gz", 7), compress=True)
        async with httpx.AsyncClient() as http:
            ok = await http.post(url + "/v1/logs", content=data, headers=headers)
            refused = await http.post(
                url + "/v1/logs",
                content=bomb,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        assert (ok.status_code, answer(ok)) == (200, {})
        assert refused.status_code == 413 and "decompressed" in answer(refused)["message"]
        await still_records(url, home, "req_after_bomb")
    assert sorted(line["input_tokens"] for line in ledger_usage(home)) == [7, 10]


async def test_chunked_bodies_keep_alive_and_expect_continue(home: Path) -> None:
    body = json.dumps(claude_batch("req_chunked", 5)).encode()
    second = json.dumps(claude_batch("req_kept", 6)).encode()
    async with receiver(home) as (_, url):
        # two requests on one connection: a chunked one (with an extension and a trailer),
        # a stray line break, then one with Content-Length, then the client closes
        pipelined = (
            request_bytes(chunks(body), chunked=True)
            + b"\r\n"
            + request_bytes(second, extra="Connection: close\r\n")
        )
        responses = await exchange(url, pipelined)
        assert [(s, json.loads(b)) for s, _, b in responses] == [(200, {}), (200, {})]
        continued = await exchange(
            url,
            request_bytes(
                json.dumps(claude_batch("req_continue", 4)).encode(),
                extra="Expect: 100-continue\r\nConnection: close\r\n",
            ),
        )
        assert [s for s, _, _ in continued] == [100, 200]
        # a chunked body over the cap
        big = chunks(b"x" * (4 * MIB + 1), 1 << 20)
        refused = await exchange(url, request_bytes(big, chunked=True), read_all=False)
        assert refused[0][0] == 413
    assert sorted(line["input_tokens"] for line in ledger_usage(home)) == [4, 5, 6]


async def test_a_slow_client_holds_no_one_up(home: Path) -> None:
    async with receiver(home) as (_, url):
        host, port = url.removeprefix("http://").split(":")
        stalled = []
        for _ in range(5):  # half a head each, then silence
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /v1/logs HTTP/1.1\r\nHost: loc")
            stalled.append(writer)
        await still_records(url, home, "req_past_stalled")
        for writer in stalled:
            writer.close()


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:4319", "127.0.0.1:1234", "[::1]", "[::1]:4319"]
)
async def test_loopback_hosts_are_served(home: Path, host: str) -> None:
    async with receiver(home) as (_, url):
        data = json.dumps(claude_batch("req_" + host)).encode()
        responses = await exchange(
            url, request_bytes(data, host=host, extra="Connection: close\r\n")
        )
        assert [s for s, _, _ in responses] == [200]


async def test_rejected_records_get_a_partial_success_and_the_rest_is_recorded(
    home: Path,
) -> None:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    bad_count = claude_api_request(now, "req_bad", inp=5)
    for pair in bad_count["attributes"]:
        if pair["key"] == "output_tokens":
            pair["value"] = {"stringValue": "lots"}
    too_old = claude_api_request(now - timedelta(days=30), "req_old", inp=5)
    good = claude_api_request(now, "req_good", inp=5, out=6)
    async with receiver(home) as (_, url):
        response = await post(url, "/v1/logs", claude_logs([bad_count, good, too_old]))
        assert response.status_code == 200
        partial = answer(response)["partialSuccess"]
        assert partial["rejectedLogRecords"] == 2
        assert "output_tokens is not a token count" in partial["errorMessage"]
        assert "older than the backfill window" in partial["errorMessage"]
        # an exporter never re-sends a partial success; if it did, nothing would be added
        again = await post(url, "/v1/logs", claude_logs([bad_count, good, too_old]))
        assert answer(again)["partialSuccess"]["rejectedLogRecords"] == 2
    assert [(line["input_tokens"], line["output_tokens"]) for line in ledger_usage(home)] == [
        (5, 6),
        (5, 6),
    ]
    assert len({line["event_id"] for line in ledger_usage(home)}) == 1
