"""`stdio.Frames`: the byte stream from the editor into message bodies, whatever the chunks."""

from __future__ import annotations

import json
from typing import Union

import pytest

from dx_lsp_telemetry.lsp import framing
from dx_lsp_telemetry.lsp.stdio import MAX_HEADER, MAX_MESSAGE, Frames, TooLarge

Item = Union[bytes, TooLarge, str]  # a runtime alias: 3.9 has no `|` of types


def framed(body: bytes, header: bytes | None = None) -> bytes:
    return (b"Content-Length: %d\r\n" % len(body) if header is None else header) + b"\r\n" + body


def body(n: int, size: int = 0) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "m", "params": "x" * size}).encode()


def feed(data: bytes, chunk: int) -> list[Item]:
    frames, items = Frames(), []
    for at in range(0, len(data), chunk):
        items += frames.feed(data[at : at + chunk])
    return items


def bodies(items: list[Item]) -> list[bytes]:
    return [item for item in items if isinstance(item, bytes)]


def notes(items: list[Item]) -> list[str]:
    return [item for item in items if isinstance(item, str)]


BODIES = [body(1), body(2, 300), b"", body(3, 5000), body(4)]
STREAM = b"".join(framed(b) for b in BODIES)


def test_frames_split_across_every_chunk_boundary_come_out_whole() -> None:
    for chunk in range(1, 70):
        assert feed(STREAM, chunk) == BODIES, chunk
    for cut in range(len(STREAM)):  # two chunks, cut at every byte
        frames = Frames()
        assert frames.feed(STREAM[:cut]) + frames.feed(STREAM[cut:]) == BODIES, cut


def test_headers_are_read_as_lsp_allows() -> None:
    content_type = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    b = body(7)
    for header in (
        b"content-length: %d\r\n" % len(b),
        content_type + b"Content-Length:%d\r\n" % len(b),
        b"Content-Length: %d\r\n" % len(b) + content_type,
        b"CONTENT-LENGTH:   %d  \r\n" % len(b),
    ):
        assert feed(framed(b, header) + framed(body(8)), 7) == [b, body(8)], header


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type: application/vscode-jsonrpc\r\n",
        b"Content-Length 12\r\n",
        b"Content-Length: -5\r\n",
        b"Content-Length: 0x10\r\n",
        b"Content-Length: 1e3\r\n",
        b"Content-Length: \r\n",
        b"Content-Length: " + b"9" * 5000 + b"\r\n",  # int() of it would even raise
        b"Content-Length: 99999999999\r\n",  # skipping that much would swallow the session
    ],
)
def test_a_header_without_a_usable_content_length_costs_its_message_only(header: bytes) -> None:
    stream = framed(body(1)) + framed(body(2), header) + framed(body(3)) + framed(body(4))
    for chunk in (1, 5, 64, len(stream)):
        items = feed(stream, chunk)
        # the body that had no length is read as the junk before the next header
        assert bodies(items) == [body(1), body(3), body(4)], chunk
        assert any("without a usable Content-Length" in n for n in notes(items))


@pytest.mark.parametrize("size", [0, 100, 20_000, 300_000])
def test_a_content_length_shorter_than_its_body_costs_that_message_only(size: int) -> None:
    lying = body(2, size)
    for cut in (0, 1, len(lying) // 2, len(lying) - 1):
        stream = (
            framed(body(1))
            + b"Content-Length: %d\r\n\r\n" % cut
            + lying
            + framed(body(3))
            + framed(body(4))
        )
        for chunk in (3, 4096, len(stream)):
            items = feed(stream, chunk)
            # the cut part is a (malformed) body; the next header is still found
            assert bodies(items) == [body(1), lying[:cut], body(3), body(4)], (cut, chunk)
            assert len(notes(items)) <= 1, notes(items)  # the rest, noted once


def test_oversize_bodies_are_skipped_unread_and_the_next_frame_read() -> None:
    big = b"x" * (MAX_MESSAGE + 1)
    stream = framed(body(1)) + framed(big) + framed(body(2))
    for chunk in (1 << 16, 1 << 20, len(stream)):
        items = feed(stream, chunk)
        too_large = [i for i in items if isinstance(i, TooLarge)]
        assert [t.length for t in too_large] == [MAX_MESSAGE + 1]
        assert bodies(items) == [body(1), body(2)]
    assert feed(framed(b"y" * MAX_MESSAGE), 1 << 20) == [b"y" * MAX_MESSAGE]  # the limit itself


def test_bytes_that_are_no_header_are_dropped_and_reading_resumes_at_the_next_one() -> None:
    junk = b"z" * (5 * MAX_HEADER)  # no header end anywhere
    stream = framed(body(1)) + junk + framed(body(2)) + framed(body(3))
    for chunk in (1, 1000, MAX_HEADER, len(stream)):
        frames = Frames()
        items: list[Item] = []
        for at in range(0, len(stream), chunk):
            items += frames.feed(stream[at : at + chunk])
            assert len(frames._buf) <= MAX_HEADER + chunk  # held, never the junk itself
        assert bodies(items) == [body(1), body(2), body(3)], chunk
        assert len(notes(items)) == 1, notes(items)  # one note for a run of junk


def test_content_length_reads_the_last_one_and_what_precedes_its_line() -> None:
    assert framing._content_length(b"Content-Length: 12") == (12, 0)
    assert framing._content_length(b'"x"}Content-Length: 12') == (12, 4)
    assert framing._content_length(b'a\r\nb"}Content-Length: 3') == (3, 6)  # all before it
    assert framing._content_length(b'"x"}Content-Type: t\r\nContent-Length: 3') == (3, 0)
    assert framing._content_length(b"Content-Type: t") == (None, 0)
    assert framing._content_length(b"Content-Length: 1" + b"0" * 20) == (None, 0)
