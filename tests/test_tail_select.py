"""`chosen_lines` yields what `appended_lines` yields, filtered by the lines' first bytes, with
the same checkpoint state: over random files, chunk sizes, appends and partial lines."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from dx_lsp_telemetry.sources import tail, tail_select
from dx_lsp_telemetry.sources.base import FileState
from dx_lsp_telemetry.sources.tail_select import chosen_lines, line_number


def choose(head: bytes) -> bool:
    return head.startswith(b"k")


@pytest.mark.parametrize("seed", range(30))
def test_chosen_lines_are_appended_lines_filtered(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    chunk = rng.choice([1, 3, 7, 64, 5000])
    monkeypatch.setattr(tail, "CHUNK", chunk)
    monkeypatch.setattr(tail_select, "CHUNK", chunk)
    monkeypatch.setattr(tail_select, "HEAD", rng.choice([1, 2, 16, 4096]))
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"")
    ours: FileState = {}
    theirs: FileState = {}
    for _ in range(12):
        lines = []
        for _ in range(rng.randrange(6)):
            body = bytes(rng.choice(b"kxy z") for _ in range(rng.randrange(0, 9000)))
            lines.append(body + b"\n")
        tail_text = b"k" * rng.randrange(3) if rng.random() < 0.4 else b""
        with open(path, "ab") as f:
            f.write(b"".join(lines) + tail_text)
        got = list(chosen_lines(path, ours, choose))
        want = [
            (o, line)
            for o, line in tail.appended_lines(path, theirs)
            if choose(line[: tail_select.HEAD])
        ]
        assert got == want
        assert ours == theirs
        if tail_text:  # complete the partial line, as a writer does
            with open(path, "ab") as f:
                f.write(b"\n")
    assert line_number(path, ours["offset"]) == path.read_bytes()[: ours["offset"]].count(b"\n") + 1


def test_a_huge_line_not_chosen_is_never_held(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with open(path, "wb") as f:
        f.write(b"k1\n")
        f.write(b"x" * (64 << 20) + b"\n")
        f.write(b"k2\n")
    tracemalloc.start()
    got = list(chosen_lines(path, {}, choose))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [line for _, line in got] == [b"k1", b"k2"]
    assert got[1][0] == 3 + (64 << 20) + 1
    assert peak < 8 << 20  # a few chunks, not the 64 MB line
