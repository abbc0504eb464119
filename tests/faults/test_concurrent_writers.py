"""Fault injection: five writers on one ledger at once.

Three sidecars (four requests in flight each) and two `dx-lsp-telemetry record` loops write a
few thousand events into one home. Some event_ids are shared across writers: "race" ids get
versions with different token totals from different writers at any moment (the larger total
must win, whatever the order), "tie" ids get two versions with the same total, the second sent
by another writer only after the first was acknowledged (the later one must win).

Afterwards every ledger line is a documented JSON object, every acknowledged event is there,
each event_id counts once, and `report --json`, every window's status and the outbox records
of a flush hold exactly the sums of the winners. DX_FAULTS_SEED=N replays a run's random choices.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.ledger_files import (
    TOKENS,
    key_of,
    numbers_of,
    read_ledger,
    record_numbers,
    totals,
)
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    cli_json,
    days_ago,
    sidecar_env,
    start_sidecar,
    stop_sidecar,
)

SEED = int(os.environ.get("DX_FAULTS_SEED") or random.SystemRandom().randrange(2**32))
SIDECARS, LANES_PER_SIDECAR, CLI_LOOPS = 3, 4, 2
SINGLES_PER_LANE, SINGLES_PER_CLI = 200, 12
RACE_IDS, TIE_IDS = 200, 60
TOOLS = ("acme-ai", "beta-ai", "gamma-ai")
#: the outbox is the destination; the background push stays off until every write is done
SETTINGS: dict[str, Any] = {**BASE_SETTINGS, "flush": {"enabled": False, "delaySeconds": 0}}
Key = tuple[str, str]


@dataclass(eq=False)
class Write:
    event: dict[str, Any]
    #: a tie's second version: sent only after this (the first version) was acknowledged
    after: asyncio.Event | None = None
    #: set once this write is acknowledged
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    answer: dict[str, Any] | None = None


@dataclass(eq=False)
class Lane:
    """One writer's sequence: `first` then `second` (ties' first versions only in `first`, their
    second versions only in `second`, so no lane waits before every first version is out)."""

    cli: bool
    first: list[Write] = field(default_factory=list)
    second: list[Write] = field(default_factory=list)


def make_event(rng: random.Random, event_id: str, total: int | None = None) -> dict[str, Any]:
    total = rng.randrange(1, 1_000_000) if total is None else total
    split = rng.randrange(0, total + 1)
    return {
        "event_id": event_id,
        "tool": rng.choice(TOOLS),
        "timestamp": days_ago(rng.randrange(2, 6), rng.randrange(24), rng.randrange(60)),
        "input_tokens": split,
        "output_tokens": total - split,
        "spend_cents": rng.randrange(0, 2000) / 4,  # quarters: every sum is exact
    }


def plan(rng: random.Random) -> tuple[list[Lane], list[Write]]:
    lanes = [Lane(cli=False) for _ in range(SIDECARS * LANES_PER_SIDECAR)]
    lanes += [Lane(cli=True) for _ in range(CLI_LOOPS)]
    weights = [1.0 if not lane.cli else 0.3 for lane in lanes]  # a CLI write is a process

    def pick(count: int) -> list[Lane]:
        chosen: list[Lane] = []
        while len(chosen) < count:
            lane = rng.choices(lanes, weights)[0]
            if lane not in chosen:
                chosen.append(lane)
        return chosen

    writes: list[Write] = []
    for n in range(RACE_IDS):
        versions = rng.choice((2, 2, 3))
        for lane, total in zip(pick(versions), rng.sample(range(1, 1_000_000), versions)):
            w = Write(make_event(rng, f"race-{n}", total))
            rng.choice((lane.first, lane.second)).append(w)
            writes.append(w)
    for n in range(TIE_IDS):
        one, two = pick(2)
        first = Write(make_event(rng, f"tie-{n}"))
        total = first.event["input_tokens"] + first.event["output_tokens"]
        # the same total, split otherwise (and maybe another day or tool): which one won shows
        second = Write(make_event(rng, f"tie-{n}", total), after=first.acked)
        one.first.append(first)
        two.second.append(second)
        writes += [first, second]
    for i, lane in enumerate(lanes):
        for h, half in enumerate((lane.first, lane.second)):
            count = (SINGLES_PER_CLI if lane.cli else SINGLES_PER_LANE) // 2
            for j in range(count):
                w = Write(make_event(rng, f"single-{i}-{h}-{j}"))
                half.append(w)
                writes.append(w)
            rng.shuffle(half)
    return lanes, writes


async def cli_record(home: Path, event: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "dx_lsp_telemetry", "record", "--json", json.dumps(event)),
        env=sidecar_env(home),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    answer: dict[str, Any] = json.loads(out)
    return answer


async def run_lane(lane: Lane, write_one: Any) -> None:
    for w in [*lane.first, *lane.second]:
        if w.after is not None:
            await asyncio.wait_for(w.after.wait(), 120)
        w.answer = await write_one(w.event)
        w.acked.set()


def winners(writes: list[Write]) -> dict[str, dict[str, Any]]:
    """The rule of README.md ("What."): the larger token total wins; on a tie, the later one."""
    best: dict[str, Write] = {}
    for w in writes:
        old = best.get(w.event["event_id"])
        if old is None:
            best[w.event["event_id"]] = w
            continue
        new_total = w.event["input_tokens"] + w.event["output_tokens"]
        old_total = old.event["input_tokens"] + old.event["output_tokens"]
        if new_total == old_total:  # only ties' versions, ordered by construction
            assert (w.after is old.acked) != (old.after is w.acked)
        if new_total > old_total or (new_total == old_total and w.after is old.acked):
            best[w.event["event_id"]] = w
    return {i: w.event for i, w in best.items()}


async def test_five_writers_at_once_count_each_event_once_with_the_winner_rule(
    home: Path,
) -> None:
    rng = random.Random(SEED)
    print(f"DX_FAULTS_SEED={SEED}", file=sys.stderr)
    lanes, writes = plan(rng)
    started = await asyncio.gather(
        *(start_sidecar(home, SETTINGS) for _ in range(SIDECARS)), return_exceptions=True
    )
    windows = [s for s in started if isinstance(s, Sidecar)]
    try:
        assert len(windows) == SIDECARS, started
        begin = time.monotonic()
        jobs = []
        sidecar_lanes = [lane for lane in lanes if not lane.cli]
        for i, lane in enumerate(sidecar_lanes):
            window = windows[i % SIDECARS]
            jobs.append(run_lane(lane, lambda e, w=window: w.record(**e)))
        for lane in lanes:
            if lane.cli:
                jobs.append(run_lane(lane, lambda e: cli_record(home, e)))
        await asyncio.gather(*jobs)
        elapsed = time.monotonic() - begin

        expected_events = winners(writes)
        by_key: dict[Key, list[dict[str, Any]]] = {}
        for event in expected_events.values():
            by_key.setdefault(key_of(event), []).append(event)
        expected = {key: totals(events) for key, events in by_key.items()}

        # every window's own view of the shared ledger agrees
        for window in windows:
            status = await window.status()
            seen = {(d["date"], d["tool"]): d["totals"] for d in status["days"]}
            assert {k: seen.get(k) for k in expected} == expected, f"seed {SEED}"

        flushed = await windows[0].command("dxTelemetry.flushNow")
        assert flushed["failed"] == [] and flushed["unconfirmed"] == [], flushed
        assert sorted((p["date"], p["tool"]) for p in flushed["pushed"]) == sorted(expected)
        assert {p["destination"] for p in flushed["pushed"]} == {"outbox"}
    finally:
        await asyncio.gather(*(stop_sidecar(w) for w in windows), return_exceptions=True)

    # each version answered; `duplicate` true for all but the first one written of each id
    versions: dict[str, list[Write]] = {}
    for w in writes:
        assert w.answer is not None and w.answer["recorded"] is True, (SEED, w.event)
        assert (w.answer["date"], w.answer["tool"]) == key_of(w.event), (SEED, w.answer)
        versions.setdefault(w.event["event_id"], []).append(w)
    for event_id, group in versions.items():
        firsts = [w for w in group if w.answer and not w.answer["duplicate"]]
        assert len(firsts) == 1, (SEED, event_id, [w.answer for w in group])

    ledger = read_ledger(home)
    assert ledger.problems == [], f"seed {SEED}: {ledger.problems[:5]}"
    in_ledger = {line["event_id"] for line in ledger.usage}
    assert set(versions) <= in_ledger, f"seed {SEED}: acknowledged events missing"
    assert in_ledger <= set(versions), f"seed {SEED}: events nobody recorded"
    lines = [{k: v for k, v in line.items() if k != "recorded_at"} for line in ledger.usage]
    for event in expected_events.values():  # the winning version itself is on disk
        want = {"type": "usage", "cache_write_tokens": 0, "cache_read_tokens": 0, **event}
        assert want in lines, (SEED, event)

    report = await asyncio.to_thread(cli_json, home, "report", "--json")
    reported = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert {k: v for k, v in reported.items() if v["events"]} == expected, f"seed {SEED}"

    for (day, tool), events in by_key.items():
        record = json.loads((home / "outbox" / f"{day}__{tool}.json").read_text())
        assert (record["date"], record["tool"], record["is_active"]) == (day, tool, True)
        assert numbers_of(record) == record_numbers(events), (SEED, day, tool)
        assert set(record) >= {"email", *TOKENS, "metrics"}

    shared = sum(len(g) for g in versions.values() if len(g) > 1)
    by_cli = sum(len(lane.first) + len(lane.second) for lane in lanes if lane.cli)
    print(
        f"seed {SEED}: {len(writes)} writes ({by_cli} "
        f"by the CLI) in {elapsed:.1f} s, {len(versions)} distinct events, {shared} versions "
        f"of {sum(len(g) > 1 for g in versions.values())} shared ids, {len(expected)} keys, "
        f"{len(ledger.problems)} bad ledger lines",
        file=sys.stderr,
    )
