"""The ledger's index never outranks the ledger: killed while it is built or written, corrupt,
from another version, or stale because the ledger changed behind its back, the next start
repairs it from the ledger, and every total is exact (compared with a plain read of the files).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    cli_json,
    kill_9,
    sidecar,
    start_sidecar,
    until,
)
from tests.ledger_oracle import totals_by_day

SEED = int(os.environ.get("DX_FAULTS_SEED", "0")) or random.randrange(1, 10**6)
TOOLS = ("acme-ai", "claude-code", "codex")
DAYS = 6
#: settings that keep the data as it is: no pruning, no push, a window over every day
SETTINGS: dict[str, Any] = {
    **BASE_SETTINGS,
    "flush": {"enabled": False, "delaySeconds": 0, "backfillDays": DAYS + 1},
    "reportInactiveDays": False,
}


def write_history(home: Path, events: int, rng: random.Random) -> None:
    """`events` usage lines over the last DAYS days, as the writer writes them, with some
    event_ids written twice (a larger and a smaller version) and a session marker a day."""
    ledger = home / "ledger"
    ledger.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    per_day = events // DAYS
    for back in range(DAYS, 0, -1):
        day = (now - timedelta(days=back)).date()
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        lines = [{"type": "session", "timestamp": _ts(start), "pid": 1, "recorded_at": _ts(start)}]
        for i in range(per_day):
            ts = start + timedelta(seconds=i * 86_000 // per_day)
            event_id = f"d{back}-e{i}" if rng.random() > 0.05 else f"d{back}-e{i // 2}"
            lines.append(
                {
                    "type": "usage",
                    "event_id": event_id,
                    "timestamp": _ts(ts),
                    "tool": rng.choice(TOOLS),
                    "model": rng.choice(("gpt-5", "claude-sonnet-4", None)),
                    "input_tokens": rng.randrange(0, 5000),
                    "output_tokens": rng.randrange(0, 800),
                    "cache_write_tokens": 0,
                    "cache_read_tokens": rng.randrange(0, 20000),
                    "spend_cents": rng.choice((0, 0.37, 1.25, 12)),
                    "recorded_at": _ts(ts + timedelta(seconds=1)),
                }
            )
        text = "".join(
            json.dumps({k: v for k, v in line.items() if v is not None}, separators=(",", ":"))
            + "\n"
            for line in lines
        )
        (ledger / f"{day.isoformat()}.jsonl").write_text(text)


def _ts(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def expected(home: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {key: t.to_status() for key, t in totals_by_day(home / "ledger").items()}


def reported(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["date"], d["tool"]): d["totals"] for d in report["days"] if d["totals"]["events"]}


def in_status(status: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["date"], d["tool"]): d["totals"]
        for d in status["days"]
        if d["totals"]["events"] and d["state"] != "open"
    }


async def assert_exact(home: Path) -> None:
    """The next start (a sidecar, then the CLI) shows exactly what the ledger holds."""
    want = expected(home)
    async with sidecar(home, SETTINGS) as client:
        assert in_status(await client.status()) == want
    assert reported(cli_json(home, "report", "--days", str(DAYS + 2), "--json")) == want


def index_files(home: Path) -> list[Path]:
    return sorted((home / "index").glob("ledger.sqlite*"))


async def test_killed_while_the_index_is_built_the_next_start_repairs_it(home: Path) -> None:
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    write_history(home, 60_000, rng)
    # how long a first build takes here, to kill at moments inside it
    started = time.monotonic()
    async with sidecar(home, SETTINGS) as client:
        await client.status()
    build = time.monotonic() - started
    for path in index_files(home):
        path.unlink()
    for _ in range(8):
        client = await start_sidecar(home, SETTINGS)
        request = asyncio.ensure_future(client.status())  # the build starts with the first read
        await asyncio.sleep(rng.uniform(0.0, build))
        await kill_9(client)
        request.cancel()
    await assert_exact(home)


async def test_killed_while_recording_the_index_stays_exact(home: Path) -> None:
    rng = random.Random(SEED + 1)
    write_history(home, 6_000, rng)
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    acknowledged = 0
    for round_ in range(6):
        client = await start_sidecar(home, SETTINGS)

        async def record_some(client: Sidecar = client, round_: int = round_) -> None:
            nonlocal acknowledged
            for i in range(10_000):
                ts = datetime(
                    yesterday.year, yesterday.month, yesterday.day, 12, tzinfo=timezone.utc
                )
                await client.record(
                    event_id=f"r{round_}-{i % 300}",  # versions replace each other
                    tool=TOOLS[i % 3],
                    timestamp=_ts(ts + timedelta(seconds=i)),
                    input_tokens=i,
                )
                acknowledged += 1

        task = asyncio.ensure_future(record_some())
        await until(lambda at=acknowledged: acknowledged > at + 20, what="some events recorded")
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        await kill_9(client)
        task.cancel()
    await assert_exact(home)


async def test_a_corrupt_or_foreign_index_is_rebuilt(home: Path) -> None:
    rng = random.Random(SEED + 2)
    write_history(home, 3_000, rng)
    await assert_exact(home)
    db = home / "index" / "ledger.sqlite"
    # garbage over the file's pages, past its header
    data = bytearray(db.read_bytes())
    for i in range(4096, len(data), 997):
        data[i] = rng.randrange(256)
    for path in index_files(home):
        path.unlink()
    db.write_bytes(bytes(data))
    await assert_exact(home)
    # not a database at all
    for path in index_files(home):
        path.unlink()
    db.write_bytes(b"this is not an index\n" * 100)
    await assert_exact(home)
    # an index of another version: its rows are not trusted
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value='0' WHERE key='schema'")
        conn.execute("UPDATE sums SET input=input+1000")
    await assert_exact(home)
    # a missing index
    for path in index_files(home):
        path.unlink()
    await assert_exact(home)


async def test_a_ledger_changed_behind_the_index_is_read_again(home: Path) -> None:
    rng = random.Random(SEED + 3)
    write_history(home, 3_000, rng)
    await assert_exact(home)
    files = sorted((home / "ledger").glob("*.jsonl"))
    # edited in place, same size: a number changed by hand
    text = files[0].read_text()
    position = text.index('"input_tokens":') + len('"input_tokens":')
    digit = "9" if text[position] != "9" else "8"
    files[0].write_text(text[:position] + digit + text[position + 1 :])
    await assert_exact(home)
    # replaced by a copy holding fewer lines (restored from a backup)
    lines = files[1].read_text().splitlines(keepends=True)
    replacement = files[1].with_suffix(".new")
    replacement.write_text("".join(lines[: len(lines) // 2]))
    replacement.replace(files[1])
    await assert_exact(home)
    # truncated in place
    with open(files[2], "r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) // 3)
    await assert_exact(home)
    # removed by hand
    files[3].unlink()
    await assert_exact(home)
    # an older day's file appearing (copied in from another machine)
    day = (datetime.now(timezone.utc) - timedelta(days=DAYS + 1)).date()
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    line = {
        "type": "usage",
        "event_id": "copied",
        "timestamp": _ts(noon),
        "tool": "acme-ai",
        "input_tokens": 77,
        "recorded_at": _ts(noon),
    }
    (home / "ledger" / f"{day.isoformat()}.jsonl").write_text(json.dumps(line) + "\n")
    await assert_exact(home)
