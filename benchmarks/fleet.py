"""10,000 machines pushing to one DX that allows 1,000 requests a minute, on a virtual clock.

Usage: .venv/bin/python benchmarks/fleet.py [--machines N] [--seed N] [--only normal|holiday]
           [--day-boundary utc|local] [--jobs N]

What runs for each machine is the sidecar's own push code, driven on a virtual clock: the
leader's schedule (`schedule.PushSchedule`, stepped as `Telemetry._schedule_loop` steps it),
a `Pusher` with the machine's own journal and push lock in its own data folder, and the real
`DxClient`, which builds each request and sorts each answer into its retry class. Only below
the client, at httpx's transport, is DX a stand-in, in this process: 10,000 machines over real
sockets would take far longer than the minute or so this takes. The stand-in checks the token and
the record, allows 1,000 requests in any 60 s (a sliding window: DX's only published limit,
the Web API's; only accepted requests count) and answers the others 429 with `Retry-After`,
the whole seconds until the window has room (`--retry-after window`: always 60 s; `--limit N`
for another limit).

The machines: emails `devNNNNN@fleet.example`; time zones from UTC-8 to UTC+10 (a quarter in
UTC-5); one AI tool on 65 % of them, two on 25 %, three on 10 %; default settings except the
email, the DX tool name and the instance. Two runs (day D is a Thursday):
- normal: every machine starts at 08:00-10:00 local on D, uses its tools and stays on through
  the night (the worst case for 00:10 UTC: every machine awake when D completes). 5 % of them
  are laptops away from the office for two days, D-1 and D (08:00-18:00 local, asleep at
  night, DX unreachable: connections refused); they come back online when they wake on D+1
  and push those two days. Rows "normal day" (the others' day D) and "offline 5% returning".
- holiday: every machine works on D and sleeps at 17:00-19:00 local, the eve of a long
  weekend; on D+4 the whole fleet wakes within 10 minutes (one office's morning, or a pool of
  cloud workstations powered on: the worst case). Row "holiday wake" (day D).

Columns, per row: the peak of requests DX received in any 60 s of the row's window (the
fleet's, 429s included); the 429s the row's machines received; how long 99 % and 100 % of the
row's records waited to be stored, counting only the time after their day completed in which
their machine was awake and online (a machine asleep cannot push); records stored twice (must
be 0); the row's requests (429s included) per machine and day of records. The two runs go in
parallel processes (`--jobs`, at most 2 by default).

Shortcuts, none of which changes a request: machines with the same tools share one ledger
(its events at noon UTC of each day) and one open ledger index, since a record differs only by
the email, which comes from each machine's own settings; a cycle before a machine's ledger
holds any complete day is not run (it would find nothing); the schedule reads the journal's
`retryAt` again only when the journal changed; retention pruning is not run; every machine
uses its tools on each day it runs (no inactive days). Not modelled: the status change that
also asks for a cycle (an event recorded while a complete day waits). With slots it changes
nothing (every request lands on the same slot); with the random delay of earlier versions it
made things worse than shown (each request drew again and kept the earliest draw).
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.ledger.recorder import record_events
from dx_lsp_telemetry.push.dx import DxClient
from dx_lsp_telemetry.push.pusher import ConfigurationError, PushBusy, Pusher
from dx_lsp_telemetry.push.schedule import PushSchedule, Step
from dx_lsp_telemetry.record.events import EventRules, validate_event
from dx_lsp_telemetry.settings.days import complete_at, format_ts
from dx_lsp_telemetry.settings.settings import Settings, parse_settings

LIMIT = 1000
WINDOW = 60.0
TOKEN = "fleet-token-8c1f2e"
INSTANCE = "http://127.0.0.1:9"  # loopback, so no proxy is consulted; never dialled
D = date(2025, 3, 13)  # a Thursday
#: (UTC offset in hours, share of the fleet)
ZONES = [
    (-8.0, 0.15),
    (-5.0, 0.25),
    (-3.0, 0.05),
    (0.0, 0.10),
    (1.0, 0.15),
    (2.0, 0.05),
    (5.5, 0.10),
    (8.0, 0.07),
    (9.0, 0.05),
    (10.0, 0.03),
]
TOOL_SETS = [
    (("claude-code",), 0.40),
    (("copilot-chat",), 0.25),
    (("claude-code", "codex"), 0.15),
    (("copilot-chat", "claude-code"), 0.10),
    (("claude-code", "codex", "copilot-chat"), 0.10),
]


def utc(day: date, hours: float = 0.0) -> datetime:
    return datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=hours)


def local(day: date, hours: float, offset: float) -> datetime:
    """`hours` after midnight of `day` in the zone UTC+`offset`."""
    return utc(day, hours - offset)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


# -- the stand-in DX -------------------------------------------------------------------------


@dataclass
class Stored:
    at: float
    machine: int


@dataclass(frozen=True)
class Limit:
    """DX's rate limit as the stand-in plays it: `requests` per WINDOW s (sliding), and the
    `Retry-After` of a 429: "room", the whole seconds until the window has room (1 s while
    it is full), or "window", always WINDOW s."""

    requests: int = LIMIT
    retry_after: str = "room"


class StandInDx:
    """`aiToolMetrics.push` behind a sliding-window limit."""

    def __init__(self, clock: Clock, limit: Limit) -> None:
        self.clock = clock
        self.limit = limit
        self._accepted: deque[float] = deque()
        self.arrivals: list[float] = []
        self.stored: dict[tuple[str, str, str], list[Stored]] = defaultdict(list)
        self.rejected: list[str] = []
        self.count = 0

    def answer(self, request: httpx.Request, machine: int) -> tuple[int, dict[str, str], bytes]:
        now = self.clock.seconds()
        self.arrivals.append(now)
        while self._accepted and self._accepted[0] <= now - WINDOW:
            self._accepted.popleft()
        if len(self._accepted) >= self.limit.requests:
            room = math.ceil(self._accepted[0] + WINDOW - now)
            wait = max(1, room) if self.limit.retry_after == "room" else int(WINDOW)
            body = b'{"ok":false,"error":"rate_limited"}'
            return 429, {"Retry-After": str(wait)}, body
        self._accepted.append(now)
        problem = self._problem(request)
        if problem:
            self.rejected.append(problem)
            return 422, {}, json.dumps({"ok": False, "error": problem}).encode()
        record = json.loads(request.content)
        key = (record["email"].lower(), record["date"], record["tool"])
        self.stored[key].append(Stored(now, machine))
        self.count += 1
        return 200, {}, b'{"ok":true,"id":"r%d"}' % self.count

    @staticmethod
    def _problem(request: httpx.Request) -> str | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return "not_authed"
        try:
            record = json.loads(request.content)
        except ValueError:
            return "invalid_json"
        if not isinstance(record, dict):
            return "invalid_arguments"
        for name, kind in (("email", str), ("date", str), ("tool", str), ("is_active", bool)):
            if not isinstance(record.get(name), kind):
                return f"invalid_arguments: {name}"
        return None


class MachineTransport(httpx.BaseTransport):
    """One machine's network: refused connections while it is offline, else the stand-in."""

    def __init__(self, dx: StandInDx, machine: int) -> None:
        self.dx = dx
        self.machine = machine
        self.online = True
        self.requests = 0
        self.throttled = 0
        self.unreached = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.online:
            self.unreached += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        request.read()
        self.requests += 1
        status, headers, body = self.dx.answer(request, self.machine)
        if status == 429:
            self.throttled += 1
        headers = {"content-type": "application/json", **headers}
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


# -- the machines ----------------------------------------------------------------------------


class SharedIndexPusher(Pusher):
    """The real pusher, reading a ledger index that machines with the same tools share and
    that stays open (opening one per cycle would be a third of the run)."""

    def __init__(self, paths: DataPaths, index: LedgerIndex, **kwargs: Any) -> None:
        super().__init__(paths, **kwargs)
        self._shared_index = index

    @contextmanager
    def _index(self) -> Iterator[LedgerIndex]:
        yield self._shared_index


@dataclass
class Machine:
    number: int
    offset: float
    tools: tuple[str, ...]
    days: tuple[date, ...]
    settings: Settings
    pusher: Pusher
    transport: MachineTransport
    rng: random.Random
    schedule: PushSchedule | None = None
    awake: bool = False
    #: queued schedule wakes of an older generation are stale (the machine slept)
    generation: int = 0
    #: the journal's earliest untried retryAt as last read, and what it was read for
    retry: datetime | None = None
    journal_seen: tuple[object, ...] | None = None
    #: the (from, to) spans in which it was awake and online: when it could push
    available: list[tuple[float, float]] = field(default_factory=list)
    available_since: float | None = None
    first_complete: float = 0.0

    @property
    def email(self) -> str:
        return self.settings.email


class Ledgers:
    """One ledger per (tools, days), written by the real recorder, each with an open index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple[tuple[str, ...], tuple[date, ...]], LedgerIndex] = {}

    def index_for(self, tools: tuple[str, ...], days: tuple[date, ...]) -> LedgerIndex:
        key = (tools, days)
        if key not in self._made:
            paths = DataPaths(self.root / f"ledger-{len(self._made)}")
            paths.ensure()
            writer = LedgerWriter(paths.ledger_dir)
            index = LedgerIndex(paths.ledger_dir)
            rules = EventRules(tools[0], utc(max(days), 23), "utc", 30)
            events = [
                validate_event(
                    {
                        "tool": tool,
                        "event_id": f"{tool}-{day}",
                        "timestamp": format_ts(utc(day, 12)),
                        "model": "claude-sonnet-4-5",
                        "input_tokens": 1200 + 7 * n,
                        "output_tokens": 300 + n,
                        "cache_read_tokens": 5000,
                        "spend_cents": 4.25,
                    },
                    rules,
                )
                for n, tool in enumerate(tools)
                for day in days
            ]
            record_events(writer, index, events, "utc")
            index.refresh()
            self._made[key] = index
        return self._made[key]


def pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


# -- the simulation --------------------------------------------------------------------------


@dataclass(order=True)
class Happening:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    machine: int = field(compare=False)
    generation: int = field(compare=False, default=0)


@dataclass
class Row:
    name: str
    machines: list[int]
    days: tuple[date, ...]
    window: tuple[datetime, datetime]


@dataclass
class Result:
    row: Row
    records: int
    peak: int
    throttled: int
    p99: float | None
    p100: float | None
    missing: int
    duplicates: int
    per_machine_day: float
    unreached: int
    problems: int


class Fleet:
    def __init__(self, root: Path, seed: int, base: Settings, limit: Limit) -> None:
        self.root = root
        self.clock = Clock(utc(D))
        self.dx = StandInDx(self.clock, limit)
        self.ledgers = Ledgers(root / "ledgers")
        self.base = base
        self.seed = seed
        self.machines: list[Machine] = []
        self._queue: list[Happening] = []
        self._seq = 0
        self.cycles = 0
        self.problems: list[str] = []
        self._zone: float | None = None

    def add(
        self, number: int, offset: float, tools: tuple[str, ...], days: tuple[date, ...]
    ) -> Machine:
        paths = DataPaths(self.root / "homes" / f"m{number:05d}")
        paths.home.mkdir(parents=True, mode=0o700)
        settings = replace(self.base, email=f"dev{number:05d}@fleet.example")
        transport = MachineTransport(self.dx, number)
        rng = random.Random(self.seed * 1_000_003 + number)
        pusher = SharedIndexPusher(
            paths,
            self.ledgers.index_for(tools, days),
            clock=self.clock,
            jitter=rng.random,
            client_factory=lambda url, token: DxClient(url, token, transport=transport),
        )
        machine = Machine(number, offset, tools, days, settings, pusher, transport, rng)
        self.zone(machine)
        machine.first_complete = min(
            complete_at(d, settings.day_boundary) for d in days
        ).timestamp()
        self.machines.append(machine)
        return machine

    def at(self, when: datetime, kind: str, machine: Machine, generation: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._queue, Happening(when, self._seq, kind, machine.number, generation))

    # -- what happens to a machine ------------------------------------------------------------

    def _available(self, m: Machine) -> None:
        """Track the spans in which `m` is awake and online."""
        now = self.clock.seconds()
        up = m.awake and m.transport.online
        if up and m.available_since is None:
            m.available_since = now
        elif not up and m.available_since is not None:
            m.available.append((m.available_since, now))
            m.available_since = None

    def zone(self, m: Machine) -> None:
        """With dayBoundary local, the process's zone is the machine's while it runs."""
        if m.settings.day_boundary == "local" and self._zone != m.offset:
            os.environ["TZ"] = posix_zone(m.offset)
            time.tzset()
            self._zone = m.offset

    def _happen(self, h: Happening) -> None:
        m = self.machines[h.machine]
        self.zone(m)
        now = self.clock.now
        if h.kind == "start":
            m.awake = True
            m.schedule = PushSchedule(now, m.settings, backoff=m.pusher.backoff)
            self._plan(m)
        elif h.kind == "sleep":
            m.awake = False
            m.generation += 1
        elif h.kind == "wake":
            # the sidecar sees the clock jump (`Telemetry._check_clock`) and asks for a cycle
            m.awake = True
            assert m.schedule is not None
            m.schedule.woke(now, m.settings, replan=True, cycle_soon=True)
            self._plan(m)
        elif h.kind == "offline":
            m.transport.online = False
        elif h.kind == "online":
            m.transport.online = True
        elif h.kind == "tick" and h.generation == m.generation and m.awake:
            self._tick(m)
        self._available(m)

    def _tick(self, m: Machine) -> None:
        assert m.schedule is not None
        now = self.clock.now
        step = m.schedule.woke(now, m.settings, replan=False, cycle_soon=False)
        if step is Step.CYCLE:
            stopped_early = False
            if now.timestamp() >= m.first_complete:
                self.cycles += 1
                try:
                    report = m.pusher.cycle(m.settings, TOKEN, manual=False)
                    stopped_early = report.stopped_early
                    self.problems += [f"{m.email}: {f}" for f in report.unconfirmed]
                except (ConfigurationError, PushBusy) as exc:
                    self.problems.append(f"{m.email}: {exc}")
            m.schedule.cycled(stopped_early)
        self._plan(m)

    def _plan(self, m: Machine) -> None:
        """The schedule's next wake, as `_schedule_loop` sleeps until it."""
        assert m.schedule is not None
        journal = m.pusher.paths.journal_file
        try:
            st = os.stat(journal)
            seen: tuple[object, ...] = (st.st_size, st.st_mtime_ns, m.schedule.tried_until)
        except FileNotFoundError:
            seen = ()
        if seen != m.journal_seen:  # else the journal would give the same answer
            m.journal_seen = seen
            m.retry = m.pusher.next_retry(m.settings, TOKEN, after=m.schedule.tried_until)
        m.schedule.note_retry(m.retry, self.clock.now, m.settings)
        wake = m.schedule.wake(m.settings)
        if wake is not None:
            self.at(max(wake, self.clock.now), "tick", m, m.generation)

    def run(self, until: datetime) -> None:
        while self._queue and self._queue[0].at < until:
            h = heapq.heappop(self._queue)
            self.clock.now = h.at
            self._happen(h)
        self.clock.now = until
        for m in self.machines:
            m.awake = False
            self._available(m)

    # -- the measures ------------------------------------------------------------------------

    def measure(self, row: Row) -> Result:
        start, end = (t.timestamp() for t in row.window)
        arrivals = [t for t in self.dx.arrivals if start <= t < end]
        peak = peak_in_window(arrivals, WINDOW)
        waits: list[float] = []
        missing = duplicates = records = 0
        machine_days = 0
        for number in row.machines:
            m = self.machines[number]
            self.zone(m)
            for day in row.days:
                if day not in m.days:
                    continue
                machine_days += 1
                ready = complete_at(day, m.settings.day_boundary).timestamp()
                for tool in m.tools:
                    records += 1
                    stored = self.dx.stored.get((m.email, day.isoformat(), tool), [])
                    if not stored:
                        missing += 1
                        continue
                    duplicates += len(stored) - 1
                    waits.append(available_between(m, ready, stored[0].at))
        requests = sum(self.machines[n].transport.requests for n in row.machines)
        throttled = sum(self.machines[n].transport.throttled for n in row.machines)
        unreached = sum(self.machines[n].transport.unreached for n in row.machines)
        waits.sort()
        k = math.ceil(0.99 * records)
        p99 = waits[k - 1] if 0 < k <= len(waits) else None
        p100 = waits[-1] if waits and not missing else None
        return Result(
            row,
            records,
            peak,
            throttled,
            p99,
            p100,
            missing,
            duplicates,
            requests / max(1, machine_days),
            unreached,
            len(self.dx.rejected) + len(self.problems),
        )


def available_between(m: Machine, start: float, end: float) -> float:
    """Seconds between `start` and `end` in which `m` was awake and online: how long a record
    waited while its machine could have pushed it."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in m.available)


def peak_in_window(times: list[float], width: float) -> int:
    """The most of `times` (any order) inside any half-open span of `width` seconds."""
    ordered = sorted(times)
    best = 0
    for i, t in enumerate(ordered):
        best = max(best, bisect.bisect_left(ordered, t + width, lo=i) - i)
    return best


# -- the two runs ----------------------------------------------------------------------------


def fleet_layout(n: int, seed: int) -> list[tuple[float, tuple[str, ...]]]:
    rng = random.Random(seed)
    return [(pick(rng, ZONES), pick(rng, TOOL_SETS)) for _ in range(n)]


def normal_run(
    root: Path, n: int, seed: int, base: Settings, limit: Limit
) -> tuple[Fleet, list[Row]]:
    fleet = Fleet(root, seed, base, limit)
    rng = random.Random(seed + 1)
    layout = fleet_layout(n, seed)
    away = set(rng.sample(range(n), n // 20))
    trip = (D - timedelta(days=1), D)
    for number, (offset, tools) in enumerate(layout):
        if number in away:
            m = fleet.add(number, offset, tools, trip)
            for i, day in enumerate(trip):
                wake = local(day, rng.uniform(8, 10), offset)
                fleet.at(wake, "start" if i == 0 else "wake", m)
                if i == 0:
                    fleet.at(wake - timedelta(seconds=1), "offline", m)
                fleet.at(local(day, rng.uniform(17, 19), offset), "sleep", m)
            back = local(D + timedelta(days=1), rng.uniform(8, 10), offset)
            fleet.at(back - timedelta(seconds=1), "online", m)
            fleet.at(back, "wake", m)
        else:
            m = fleet.add(number, offset, tools, (D,))
            fleet.at(local(D, rng.uniform(8, 10), offset), "start", m)
    day_after = utc(D + timedelta(days=1))
    rows = [
        Row(
            "normal day",
            [i for i in range(n) if i not in away],
            (D,),
            (day_after, day_after + timedelta(days=1)),
        ),
        # from D: the laptops in UTC+10 wake on D+1 at 22:00 UTC on D
        Row("offline 5% returning", sorted(away), trip, (utc(D), day_after + timedelta(days=1))),
    ]
    return fleet, rows


def holiday_run(
    root: Path, n: int, seed: int, base: Settings, limit: Limit
) -> tuple[Fleet, list[Row]]:
    fleet = Fleet(root, seed, base, limit)
    rng = random.Random(seed + 2)
    back = utc(D + timedelta(days=4), 8)
    for number, (offset, tools) in enumerate(fleet_layout(n, seed)):
        m = fleet.add(number, offset, tools, (D,))
        fleet.at(local(D, rng.uniform(8, 10), offset), "start", m)
        fleet.at(local(D, rng.uniform(17, 19), offset), "sleep", m)
        fleet.at(back + timedelta(seconds=rng.uniform(0, 600)), "wake", m)
    # until the wake day completes: every day after D is empty
    window = (utc(D + timedelta(days=1)), utc(D + timedelta(days=5)))
    return fleet, [Row("holiday wake", list(range(n)), (D,), window)]


def simulate(
    name: str, build: Any, n: int, seed: int, base: Settings, limit: Limit, work: Path
) -> tuple[list[Result], float, int]:
    root = work / name
    started = time.perf_counter()
    fleet, rows = build(root, n, seed, base, limit)
    fleet.run(max(r.window[1] for r in rows))
    results = [fleet.measure(r) for r in rows]
    seconds = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    return results, seconds, fleet.cycles


RUNS = [("normal", normal_run), ("holiday", holiday_run)]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "not all"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def posix_zone(offset: float) -> str:
    """A POSIX TZ value for UTC+`offset` (POSIX counts hours west of Greenwich)."""
    minutes = round(abs(offset) * 60)
    return f"FLEET{'-' if offset > 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=[name for name, _ in RUNS])
    parser.add_argument("--day-boundary", choices=["utc", "local"], default="utc")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel"
    )
    parser.add_argument("--limit", type=int, default=LIMIT, help="DX's requests per minute")
    parser.add_argument(
        "--retry-after",
        choices=["room", "window"],
        default="room",
        help="a 429's Retry-After: until the window has room (default), or a whole window",
    )
    args = parser.parse_args()
    limit = Limit(args.limit, args.retry_after)
    # each throttled or unreachable push logs a warning: 10,000 machines' worth is noise here
    logging.getLogger("dx_lsp_telemetry").setLevel(logging.ERROR)
    section = {"email": "x@fleet.example", "tool": "fleet-ai", "instanceUrl": INSTANCE}
    if args.day_boundary == "local":
        section["dayBoundary"] = "local"
    base = parse_settings(section, env={}).settings
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="dx-fleet-", dir=shm if shm.is_dir() else None))
    runs = [(name, build) for name, build in RUNS if args.only in (None, name)]
    started = time.perf_counter()
    try:
        with ProcessPoolExecutor(
            max_workers=max(1, min(args.jobs, len(runs))), mp_context=get_context("fork")
        ) as pool:
            futures = [
                pool.submit(simulate, name, build, args.machines, args.seed, base, limit, work)
                for name, build in runs
            ]
            done = [f.result() for f in futures]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = [r for out, _, _ in done for r in out]
    notes = [
        f"{runs[i][0]}: {cycles} real push cycles, {seconds:.0f} s"
        for i, (_, seconds, cycles) in enumerate(done)
    ]

    print()
    print(
        f"{args.machines} machines, flush.delaySeconds {base.flush_delay_seconds} (the default), "
        f"dayBoundary {base.day_boundary}, DX limit {limit.requests} requests / {WINDOW:.0f} s "
        f"(Retry-After: {limit.retry_after})"
    )
    head = (
        f"{'scenario':<22}{'records':>8}{'peak/min':>10}{'429s':>7}{'99% in':>9}"
        f"{'100% in':>9}{'dupes':>7}{'req/machine/day':>17}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.row.name:<22}{r.records:>8}{r.peak:>10}{r.throttled:>7}{duration(r.p99):>9}"
            f"{duration(r.p100):>9}{r.duplicates:>7}{r.per_machine_day:>17.2f}"
        )
    for r in results:
        extra = []
        if r.missing:
            extra.append(f"{r.missing} records never stored")
        if r.unreached:
            extra.append(f"{r.unreached} tries that never reached DX (offline)")
        if r.problems:
            extra.append(f"{r.problems} rejected or unconfirmed")
        if extra:
            print(f"  {r.row.name}: " + "; ".join(extra))
    wall = time.perf_counter() - started
    print(f"  {'; '.join(notes)}; {wall:.0f} s in all")
    targets = all(
        r.peak < limit.requests and r.duplicates == 0 and r.p100 is not None and r.p100 <= 86_400
        for r in results
    )
    print(
        f"  targets (peak < {limit.requests}/min, every record within 24 h, 0 duplicates): "
        + ("met" if targets else "NOT met")
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
