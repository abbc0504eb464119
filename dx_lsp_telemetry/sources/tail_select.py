"""Appended lines chosen by their first bytes: a line not chosen is passed over as it is read,
never held in memory, however long.

`tail.appended_lines` holds each line whole before it yields it, and grows its buffer a chunk
at a time: a line of hundreds of megabytes (a chat session's tool output) costs its size in
memory and time quadratic in it. Here a line's first `HEAD` bytes decide: kept lines are joined
once from their chunks, the others are skipped to their newline. The checkpoint state is the
one `appended_lines` keeps (offset past the last complete line, identity, size, mtime, head).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dx_lsp_telemetry.sources.base import FileState
from dx_lsp_telemetry.sources.tail import CHUNK, _head, identity

#: the bytes of a line its chooser sees (all of a shorter line)
HEAD = 4096


def chosen_lines(
    path: Path, state: FileState, choose: Callable[[bytes], bool]
) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for each complete line after `state["offset"]` whose first bytes
    `choose` accepts, without its newline; `state` follows along as `appended_lines` has it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        offset = int(state.get("offset", 0))
        if (
            state.get("identity") != identity(st)
            or st.st_size < offset
            or (offset and state.get("head") != _head(fd, offset))
        ):
            state.clear()  # replaced, truncated or rewritten: from the start; keys dedupe
            offset = 0
        state["identity"] = identity(st)
        state["offset"] = offset
        os.lseek(fd, offset, os.SEEK_SET)
        start = offset  # the file offset of the current line
        parts: list[bytes] = []  # the current line so far, while it is kept or undecided
        size = 0
        keep: bool | None = None  # None: fewer than HEAD bytes of it seen yet
        position = offset  # the file offset of chunk[0]
        while chunk := os.read(fd, CHUNK):
            i = 0
            while i < len(chunk):
                nl = chunk.find(b"\n", i)
                piece = chunk[i:] if nl < 0 else chunk[i:nl]
                if keep is not False:
                    parts.append(piece)
                    size += len(piece)
                    if keep is None and (size >= HEAD or nl >= 0):
                        head = b"".join(parts)
                        parts = [head]
                        keep = choose(head[:HEAD])
                        if not keep:
                            parts, size = [], 0
                if nl < 0:
                    break
                end = position + nl + 1
                if keep:
                    line = parts[0] if len(parts) == 1 else b"".join(parts)
                    state["offset"] = end
                    yield start, line
                state["offset"] = end
                start, parts, size, keep = end, [], 0, None
                i = nl + 1
            position += len(chunk)
        state["size"] = st.st_size
        state["mtime"] = st.st_mtime_ns
        state["head"] = _head(fd, state["offset"])
    finally:
        os.close(fd)


def line_number(path: Path, offset: int) -> int:
    """The number of the line at byte `offset` (for problems only: it reads up to there)."""
    count = 1
    try:
        with open(path, "rb") as f:
            left = offset
            while left > 0:
                chunk = f.read(min(left, CHUNK))
                if not chunk:
                    break
                count += chunk.count(b"\n")
                left -= len(chunk)
    except OSError:
        pass
    return count
