"""Fault injection: hand-edited or corrupt ledger and journal lines.

Garbage, NUL bytes, invalid UTF-8, valid JSON of the wrong shape (an array, a string, an object
with wrong types) and a line torn in the middle of a file: each bad line is named in the log
(file and line) once per sidecar, not again at every status refresh or push cycle; every other
line is read; and the record DX receives is exactly the sum of the good events.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    date_ago,
    days_ago,
    start_sidecar,
    state_of,
    stop_sidecar,
)

TOOL = "acme-ai"
EMAIL = "dev@example.com"
FLUSH_NOW = "dxTelemetry.flushNow"


def usage(event_id: str, n: int, **fields: Any) -> dict[str, Any]:
    """A ledger line as the product writes it."""
    return {
        "type": "usage",
        "event_id": event_id,
        "timestamp": days_ago(n, 9),
        "tool": TOOL,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_write_tokens": 0,
        "cache_read_tokens": 0,
        "spend_cents": 0,
        "recorded_at": days_ago(n, 10),
        **fields,
    }


def pushed_line(dx: FakeDx, n: int) -> dict[str, Any]:
    """A journal line as the product writes it for a day DX accepted."""
    return {
        "destination": f"dx:{dx.url}",
        "email": EMAIL,
        "date": date_ago(n),
        "tool": TOOL,
        "state": "pushed",
        "at": days_ago(n - 1, 0, 20),
        "dx_id": f"id-{n}",
    }


def encode(line: bytes | dict[str, Any]) -> bytes:
    return line if isinstance(line, bytes) else json.dumps(line).encode()


def write(path: Path, lines: list[bytes | dict[str, Any]]) -> list[int]:
    """Write `lines`, one per line; the 1-based numbers of those given as bytes (the bad ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(encode(line) + b"\n" for line in lines))
    return [i for i, line in enumerate(lines, 1) if isinstance(line, bytes)]


def byte_offset(path: Path, number: int) -> int:
    data = path.read_bytes()
    return sum(len(line) + 1 for line in data.split(b"\n")[: number - 1])


def bad_lines(torn: bytes, *wrong_types: dict[str, Any]) -> list[bytes]:
    """Every kind of damage a hand edit, a bad disk or a crash leaves (as raw bytes)."""
    return [
        b"this is not json {",
        b"\x00\x00\x00\x00\x00\x00",
        b'{"type":"usage","event_id":"bad-\xff\xfe","input_tokens":1}',  # invalid UTF-8
        b"[1, 2, 3]",
        b'"just a string"',
        *(json.dumps(line).encode() for line in wrong_types),
        torn,  # a line cut short by a crash, then sealed by the next write
    ]


async def finish(client: Sidecar) -> None:
    """shutdown + exit, and the sidecar's stderr read to its end."""
    await asyncio.wait_for(client.shutdown_session(), 10)
    forwarder = client._stderr_forwarder
    if forwarder is not None:
        await asyncio.wait_for(asyncio.shield(forwarder), 5)
    await client.stop()


async def test_corrupt_lines_are_named_once_and_the_rest_is_pushed_exactly(
    home: Path, dx: FakeDx
) -> None:
    day2 = home / "ledger" / f"{date_ago(2)}.jsonl"
    good = [
        usage("g1", 2, input_tokens=100, output_tokens=10, spend_cents=0.25),
        usage("g2", 2, cache_write_tokens=7, cache_read_tokens=70, spend_cents=0.5),
        usage("g3", 2, input_tokens=1, output_tokens=2, metrics={"accepted": 3}),
    ]
    ledger_bad = bad_lines(
        b'{"type":"usage","event_id":"torn","input_tok',
        usage("wrong", 2, input_tokens="many", timestamp=12345),
    )
    ledger_bad_numbers = write(day2, [good[0], *ledger_bad[:4], good[1], *ledger_bad[4:], good[2]])
    for n in (3, 4):
        write(home / "ledger" / f"{date_ago(n)}.jsonl", [usage(f"e{n}", n, input_tokens=n)])

    journal = home / "journal.jsonl"
    journal_bad = bad_lines(
        b'{"destination":"dx:http://127.0.0.1","email":"dev@',
        {**pushed_line(dx, 2), "totals": "lots", "dx_id": 42},  # not to be trusted: day 2
        {**pushed_line(dx, 5), "date": 20260101},
        {**pushed_line(dx, 5), "state": "pushed", "at": None, "marked": "yes"},
    )
    journal_bad_numbers = write(
        journal, [pushed_line(dx, 3), *journal_bad, pushed_line(dx, 4)]
    )  # day 4's line comes after the torn one: it is still read

    settings = {**BASE_SETTINGS, "instanceUrl": dx.url, "flush": {"enabled": False}}
    client = await start_sidecar(home, settings)
    try:
        for _ in range(3):  # status refreshes: nothing is named again
            status = await client.status()
            assert [state_of(status, date_ago(n)) for n in (2, 3, 4)] == [
                "pending",
                "pushed",
                "pushed",
            ]
        entry = next(d for d in status["days"] if d["date"] == date_ago(2))
        assert entry["totals"] == {
            "events": 3,
            "input_tokens": 101,
            "output_tokens": 12,
            "cache_write_tokens": 7,
            "cache_read_tokens": 70,
            "spend_cents": 0.75,
        }
        # push cycles re-read the journal and the ledger: still nothing named twice
        assert await client.command(FLUSH_NOW) == {
            "pushed": [{"date": date_ago(2), "tool": TOOL, "destination": "dx"}],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
        assert (await client.command(FLUSH_NOW))["pushed"] == []
        for _ in range(3):
            status = await client.status()
        assert [state_of(status, date_ago(n)) for n in (2, 3, 4)] == ["pushed"] * 3
        await client.record(event_id="after", timestamp=days_ago(1), input_tokens=1)
        await client.status()
        assert client.process.returncode is None
    except BaseException:
        await stop_sidecar(client)
        raise
    await finish(client)

    assert dx.stored == [
        {
            "email": EMAIL,
            "date": date_ago(2),
            "is_active": True,
            "tool": TOOL,
            "metrics": {"events": 3, "accepted": 3},
            "input_tokens": 101,
            "output_tokens": 12,
            "cache_write_tokens": 7,
            "cache_read_tokens": 70,
            "spend_cents": 1,  # 0.75 rounded half up
        }
    ]
    log = client.stderr_lines

    def naming(*patterns: str) -> list[str]:
        return [line for line in log if any(re.search(p, line) for p in patterns)]

    # the journal: each bad line by its number, exactly once
    for number in journal_bad_numbers:
        named = naming(rf"journal\.jsonl line {number}\b")
        assert len(named) == 1, (number, named)
    assert len(naming(r"journal\.jsonl line ")) == len(journal_bad_numbers)

    # the ledger: the file is named, and each bad line at most once (by its byte offset, or
    # by its line number)
    name = re.escape(day2.name)
    assert naming(name)
    for number in ledger_bad_numbers:
        named = naming(rf"{name} line {number}\b", rf"{name}.* byte {byte_offset(day2, number)}\b")
        assert len(named) <= 1, (number, named)
    # ... and by its line number, as the issue asks (file and line)
    for number in ledger_bad_numbers:
        assert len(naming(rf"{name} line {number}\b")) == 1, (number, naming(name))
