"""Reading only what was appended to a log file since the last checkpoint.

A file is known by (device, inode) and its offset; only complete lines are consumed. A file that
shrank or was replaced is read again from 0: record keys make the re-read harmless.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from dx_lsp_telemetry.sources.base import FileState

CHUNK = 1 << 20
HEAD_BYTES = 256


def identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino]


def appended_lines(path: Path, state: FileState) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line) for each complete line after `state["offset"]`.

    `state` follows along (`offset` past the last complete line read, `identity`, and the
    `size`/`mtime` seen at the start), so a caller resumes exactly where this stopped. A
    line is yielded without its newline.
    """
    return _appended(path, state, None)


def appended_lines_containing(
    path: Path, state: FileState, needle: bytes
) -> Iterator[tuple[int, bytes]]:
    """`appended_lines`, only the lines that contain `needle` (no newline in it): the others are
    skipped without being cut out of the buffer. `state` follows along exactly the same."""
    if b"\n" in needle or not needle:
        raise ValueError("the needle must be a non-empty part of one line")
    return _appended(path, state, needle)


def _appended(path: Path, state: FileState, needle: bytes | None) -> Iterator[tuple[int, bytes]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        offset = int(state.get("offset", 0))
        head = _head(fd, offset)
        if (
            state.get("identity") != identity(st)
            or st.st_size < offset
            or (offset and state.get("head") != head)
        ):
            state.clear()  # replaced, truncated or rewritten: from the start; keys dedupe
            offset = 0
        state["identity"] = identity(st)
        state["offset"] = offset
        os.lseek(fd, offset, os.SEEK_SET)
        buf = b""
        base = offset  # the file offset of buf[0]
        while chunk := os.read(fd, CHUNK):
            buf = buf + chunk if buf else chunk
            end = buf.rfind(b"\n") + 1  # past the last complete line in buf
            if needle is None:
                start = 0
                while start < end:
                    nl = buf.index(b"\n", start)
                    yield base + start, buf[start:nl]
                    start = nl + 1
            else:
                hit = buf.find(needle, 0, end)
                while hit >= 0:
                    start = buf.rfind(b"\n", 0, hit) + 1
                    nl = buf.index(b"\n", hit)
                    yield base + start, buf[start:nl]
                    hit = buf.find(needle, nl + 1, end)
            if end:
                base += end
                buf = buf[end:]
                state["offset"] = base
        state["size"] = st.st_size
        state["mtime"] = st.st_mtime_ns
        state["head"] = _head(fd, state["offset"])
    finally:
        os.close(fd)


def _head(fd: int, offset: int) -> str:
    """A fingerprint of the file's first bytes (up to `offset`): a rewrite in place changes it."""
    return hashlib.blake2b(os.pread(fd, min(HEAD_BYTES, offset), 0), digest_size=8).hexdigest()


def unchanged(path: Path, state: FileState) -> bool:
    """Whether (identity, size, mtime) still match the checkpoint: nothing to read."""
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (
        state.get("identity") == identity(st)
        and state.get("size") == st.st_size
        and state.get("mtime") == st.st_mtime_ns
    )
