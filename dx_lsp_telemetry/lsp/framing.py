"""LSP's base protocol framing: `Content-Length` frames split out of stdin's bytes, whatever
the chunks (`Frames`), and replies framed and written together (`ReplyWriter`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)

#: larger messages are skipped unread (an editor's biggest, the settings, is a few KiB)
MAX_MESSAGE = 8 << 20
#: a larger Content-Length is not believed: skipping that much would swallow the session
MAX_SKIP = 64 << 20
MAX_HEADER = 8 << 10
#: what is kept of bytes that are not a header, in case a header starts in their last part
RESYNC_TAIL = 1 << 10


class TooLarge:
    def __init__(self, length: int) -> None:
        self.length = length


class Frames:
    """Splits the byte stream into message bodies (or markers of what could not be read).

    A Content-Length that lies (shorter than its body) leaves the rest of the body in front
    of the next header; the next header is still found (its Content-Length is the last one
    before the blank line), so one lie costs one message, not the rest of the session.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized body still to drop
        self._dropping = False  # inside a run of bytes that hold no header end

    def feed(self, data: bytes) -> list[bytes | TooLarge | str]:
        """The complete items in `data` and what came before: bodies, TooLarge for a body
        skipped, a str naming what was not understood (a header, bytes before one)."""
        out: list[bytes | TooLarge | str] = []
        buf = self._buf
        buf += data
        while True:
            if self._skip:
                dropped = min(self._skip, len(buf))
                del buf[:dropped]
                self._skip -= dropped
                if self._skip:
                    return out
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER:  # not LSP framing: drop it, resynchronise later
                    if not self._dropping:
                        out.append("bytes that hold no header end")
                        self._dropping = True
                    del buf[:-RESYNC_TAIL]
                return out
            noted, self._dropping = self._dropping, False
            header = bytes(buf[:end])
            length, junk = _content_length(header)
            start = end + 4
            if length is None:
                out.append("a header without a usable Content-Length: " + _ascii(header))
                del buf[:start]
                continue
            if junk:  # dropped now, or each chunk until the body is complete would see it
                if not noted:  # the end of a run of bytes already noted
                    out.append(f"{junk} bytes before a header (a Content-Length that lied?)")
                del buf[:junk]
                continue
            if length > MAX_MESSAGE:
                out.append(TooLarge(length))
                taken = min(length, len(buf) - start)
                del buf[: start + taken]
                self._skip = length - taken
                continue
            if len(buf) < start + length:
                return out
            out.append(bytes(buf[start : start + length]))
            del buf[: start + length]


def _content_length(header: bytes) -> tuple[int | None, int]:
    """The header's Content-Length (None: none, or none to believe), and how many bytes come
    before the real header: if its line does not start with the name, what precedes the name
    is the end of an earlier body whose Content-Length was too short."""
    at = header.lower().rfind(b"content-length:")
    if at < 0:
        return None, 0
    junk = at if at and header[at - 2 : at] != b"\r\n" else 0
    value = header[at + len(b"content-length:") :].split(b"\r\n", 1)[0].strip()
    # more digits than any believable length: int() of 5000 digits even raises ValueError
    if not value.isdigit() or len(value) > 12 or int(value) > MAX_SKIP:
        return None, junk
    return int(value), junk


def _ascii(data: bytes) -> str:
    return repr(data[:120].decode("ascii", "replace"))


class ReplyWriter:
    """pygls's writer: what is written in one turn of the loop goes out in one write."""

    def __init__(self, stream: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._loop_thread = threading.get_ident()  # made on the loop's thread
        self.broken = False

    def write(self, data: bytes) -> None:
        with self._lock:
            self._pending.append(data)
            first = len(self._pending) == 1
        if not first:
            return
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self.flush)
        else:  # waking the loop from another thread costs a write to its self-pipe
            self._loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        with self._lock:
            data, self._pending = b"".join(self._pending), []
        if not data or self.broken:
            return
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True  # the editor is gone; the reader sees stdin close too

    def close(self) -> None:
        self.flush()
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
