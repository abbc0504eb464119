"""A long ledger: start-up, status, the CLI and flushNow on 1 to 365 days of history.

Usage: .venv/bin/python benchmarks/history.py [--runs N] [--ledgers 30x1000000,...|full]
       [--timeout S]

Goals (issue 8), on the 30-day ledger of 1M events: the first `dxTelemetry/status` of a second
start < 300 ms and the sidecar's RSS < 60 MiB; `report --days 30 --json` < 0.5 s and
`status --json` < 0.3 s; flushNow of 7 complete days x ~33k events < 2 s. Takes 4 to 7 minutes
at the defaults with today's sidecar on a busy 2-core machine, most of it on the 30-day 1M
ledger (plus ~30 s to generate the ledgers, 640 MiB, once a day).

Ledgers (default: 1 day x 10k, 30 days x 100k, 30 days x 1M, 365 days x 1M events; `full`: the
3x3 grid of 1/30/365 days x 10k/100k/1M) are written directly in the ledger's line format (as
LedgerWriter writes them, `recorded_at` included) with a session marker or two per day, spread
evenly over the days up to now, the last day being today. They are cached under
.cache/bench/history/<days>d-<events>/ and regenerated when the date changes. Settings:
email, tool, retentionDays 3650 (the leader prunes older files), flush.enabled false (only
flushNow pushes), backfillDays 7, no instanceUrl (the outbox is the destination).

Each run, per ledger, on a fresh copy of it (files in the OS cache: "cold" means no derived
file of the sidecar's yet, as on the first start after an upgrade):
1. first start: spawn -> `initialize` answered; spawn -> first `status` answered; RSS then;
   a later `status` in the same process (median of 5);
2. second start on the same data folder (whatever the first left there is reused): the same,
   then `workspace/executeCommand dxTelemetry.flushNow`: the 7 complete days of the window
   are due (never pushed: flush.enabled is false);
3. with no sidecar running: `report --days 30 --json` and `status --json`, wall time.
Answers are checked against the generator's totals. Each step is cut at --timeout and shown
as `>N s` (then its process is killed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsp_wire import ROOT, SIDECAR, Connection, clean_env, initialize_params, load

CACHE = ROOT / ".cache" / "bench" / "history"
#: bump when the generated lines change, so cached ledgers are rewritten
FORMAT = 2
EMAIL = "bench@example.com"
BACKFILL_DAYS = 7
SETTINGS = {
    "email": EMAIL,
    "tool": "bench",
    "retentionDays": 3650,
    "flush": {"enabled": False, "backfillDays": BACKFILL_DAYS},
}
DEFAULT_LEDGERS = ((1, 10_000), (30, 100_000), (30, 1_000_000), (365, 1_000_000))
FULL_GRID = tuple((d, n) for d in (1, 30, 365) for n in (10_000, 100_000, 1_000_000))
TARGET_LEDGER = (30, 1_000_000)
LATER_STATUSES = 5
#: a day is complete (due) this long after it ends (README: 10 min after midnight)
GRACE = timedelta(minutes=10)
MICROSECOND = timedelta(microseconds=1)
FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
#: (tool, source, models, share of the events)
TOOLS = (
    ("claude-code", "claude-code", ("claude-sonnet-4-5-20250929", "claude-haiku-4-5"), 0.6),
    ("codex", "codex", ("gpt-5-codex", "gpt-5"), 0.3),
    ("bench", "api", ("gpt-4.1-mini",), 0.1),
)
RECORD_DELAY_US = 2500

# -- the ledgers -------------------------------------------------------------------------------

Totals = list[float]  # events, the four token counts, spend_cents


@dataclass
class Ledger:
    days: int
    events: int
    root: Path  # holds ledger/ and meta.json
    end: date = date.min
    bytes: int = 0
    #: date -> tool -> Totals, as the generator wrote them
    expected: dict[str, dict[str, Totals]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.days}d x {_count(self.events)}"

    @property
    def ledger_dir(self) -> Path:
        return self.root / "ledger"


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def _ts(day: str, us_of_day: int) -> str:
    """format_ts's form: RFC 3339 UTC with `Z`, microseconds only when not 0."""
    s, us = divmod(us_of_day, 1_000_000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if us:
        return f"{day}T{h:02d}:{m:02d}:{s:02d}.{us:06d}Z"
    return f"{day}T{h:02d}:{m:02d}:{s:02d}Z"


def _cents(value: float) -> str:
    """The ledger's spend_cents: an integral amount as an int, else the float's shortest text."""
    return str(int(value)) if value.is_integer() else repr(value)


USAGE = (
    '{{"type":"usage","event_id":"{}","timestamp":"{}","tool":"{}","model":"{}",'
    '"source":"{}","input_tokens":{},"output_tokens":{},"cache_write_tokens":{},'
    '"cache_read_tokens":{},"spend_cents":{},"recorded_at":"{}"}}\n'
)
SESSION = '{{"type":"session","timestamp":"{}","pid":{},"recorded_at":"{}"}}\n'


def _day_lines(
    rng: random.Random, day: date, n: int, span_us: int, expected: dict[str, Totals]
) -> Iterable[str]:
    """n usage lines spread evenly over the first span_us of `day`, in time order, and a
    session marker at the start of each sidecar's session (the first, and one at midday)."""
    text = day.isoformat()
    markers = sorted({0, span_us // 2} if span_us > 1_000_000 else {0})
    step = span_us / max(n, 1)
    tools = [(t, s, m) for t, s, m, share in TOOLS for _ in range(round(share * 10))]
    for tool, *_ in TOOLS:
        expected.setdefault(tool, [0] * 6)
    pid = rng.randint(2000, 90000)
    r = rng.random  # int(r() * k) rather than randint: a third of the generator's time
    last = span_us - RECORD_DELAY_US - 1  # recorded_at stays inside the day
    for i in range(n):
        at = min(last, int((i + r()) * step))
        while markers and markers[0] <= at:
            mark = markers.pop(0)
            yield SESSION.format(_ts(text, mark), pid, _ts(text, mark + 1200))
            pid += 1 + int(r() * 500)
        tool, source, models = tools[int(r() * len(tools))]
        inp, out = 20 + int(r() * 30_000), 10 + int(r() * 6_000)
        write = int(r() * 40_000) if r() < 0.3 else 0
        read = int(r() * 250_000)
        # cost_usd -> cents, rounded as a source's reported cost would be
        cents = round((inp * 3.0 + out * 15.0 + write * 3.75 + read * 0.3) / 1e4, 4)
        total = expected[tool]
        total[0] += 1
        total[1] += inp
        total[2] += out
        total[3] += write
        total[4] += read
        total[5] += cents
        h = f"{rng.getrandbits(128):032x}"
        yield USAGE.format(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}",
            _ts(text, at),
            tool,
            models[int(r() * len(models))],
            source,
            inp,
            out,
            write,
            read,
            _cents(cents),
            _ts(text, at + RECORD_DELAY_US),  # appended in time order, a moment later
        )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def generate(ledger: Ledger, now: datetime, seed: int) -> None:
    tmp = ledger.root.with_name(ledger.root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "ledger").mkdir(parents=True)
    rng = random.Random(f"{seed}:{ledger.days}:{ledger.events}")
    today = now.date()
    # today's events end a minute ago: nothing is in the future when the sidecar reads it
    since_midnight = now - _midnight(today)
    today_span = max(1_000_000, (since_midnight - timedelta(minutes=1)) // MICROSECOND)
    expected: dict[str, dict[str, Totals]] = {}
    per_day, extra = divmod(ledger.events, ledger.days)
    for k in range(ledger.days):
        day = today - timedelta(days=ledger.days - 1 - k)
        n = per_day + (1 if k < extra else 0)
        span = today_span if day == today else 86_400_000_000
        day_totals = expected.setdefault(day.isoformat(), {})
        path = tmp / "ledger" / f"{day.isoformat()}.jsonl"
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.writelines(_day_lines(rng, day, n, span, day_totals))
        os.chmod(path, 0o600)
    meta = {
        "format": FORMAT,
        "days": ledger.days,
        "events": ledger.events,
        "seed": seed,
        "end": today.isoformat(),
        "generated_at": now.isoformat(),
        "expected": expected,
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(ledger.root, ignore_errors=True)
    tmp.rename(ledger.root)


def cached(days: int, events: int, seed: int) -> tuple[Ledger, float | None]:
    """The cached ledger, generated first if missing or not ending today; (it, seconds spent
    generating or None)."""
    ledger = Ledger(days, events, CACHE / f"{days}d-{events}")
    now = datetime.now(timezone.utc)
    spent = None
    meta = _meta(ledger.root / "meta.json")
    if (
        meta is None
        or meta.get("format") != FORMAT
        or meta.get("seed") != seed
        or meta.get("end") != now.date().isoformat()
    ):
        started = time.perf_counter()
        generate(ledger, now, seed)
        spent = time.perf_counter() - started
        meta = _meta(ledger.root / "meta.json")
        assert meta is not None
    ledger.end = date.fromisoformat(meta["end"])
    ledger.expected = meta["expected"]
    ledger.bytes = sum(p.stat().st_size for p in ledger.ledger_dir.iterdir())
    return ledger, spent


def _meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def due_days(ledger: Ledger, now: datetime) -> set[tuple[str, str]]:
    """(date, tool) that flushNow must push: complete days of the backfill window with usage."""
    today = now.date()
    due = set()
    for k in range(1, BACKFILL_DAYS + 1):
        day = today - timedelta(days=k)
        if now < _midnight(day + timedelta(days=1)) + GRACE:
            continue
        for tool, totals in ledger.expected.get(day.isoformat(), {}).items():
            if totals[0]:
                due.add((day.isoformat(), tool))
    return due


# -- checks against the generator ------------------------------------------------------------


def mismatches(ledger: Ledger, rows: list[dict[str, Any]], first: date) -> list[str]:
    """Rows ({date, tool, totals}) that disagree with the generator, for the days >= first."""
    seen = {(r["date"], r["tool"]): r["totals"] for r in rows}
    problems = []
    for day, tools in ledger.expected.items():
        if date.fromisoformat(day) < first:
            continue
        for tool, want in tools.items():
            if not want[0]:
                continue
            got = seen.get((day, tool))
            if got is None:
                problems.append(f"{day} {tool}: missing")
                continue
            values = [got["events"], *(got[f] for f in FIELDS)]
            if values != [int(w) for w in want[:5]] or abs(got["spend_cents"] - want[5]) > 0.01:
                problems.append(f"{day} {tool}: {[*values, got['spend_cents']]} != {want}")
    return problems[:3]


# -- measurements ----------------------------------------------------------------------------


class TimedOut(Exception):
    pass


@dataclass
class Start:
    initialize: float | None = None
    first_status: float | None = None
    later_status: float | None = None
    rss_mib: float | None = None
    flush_now: float | None = None


@dataclass
class Run:
    cold: Start
    warm: Start
    report: float | None = None
    status_cli: float | None = None


@dataclass
class Problems:
    lines: list[str] = field(default_factory=list)

    def add(self, ledger: Ledger, what: str, detail: Iterable[str] | str) -> None:
        items = [detail] if isinstance(detail, str) else list(detail)
        if items:
            self.lines.append(f"{ledger.label}: {what}: " + "; ".join(items))


async def start(
    ledger: Ledger,
    env: dict[str, str],
    timeout: float,
    problems: Problems,
    flush: bool,
) -> Start:
    """One sidecar: the timings of a start, and flushNow if asked. A step cut at `timeout` is
    inf, a step never reached None."""
    out = Start()
    step = "initialize"
    started = time.perf_counter()
    conn = await Connection.spawn(SIDECAR, env)
    now = datetime.now(timezone.utc)
    try:
        await conn.call("initialize", initialize_params(SETTINGS), timeout)
        out.initialize = time.perf_counter() - started
        conn.notify("initialized", {})
        step = "first_status"
        status = await conn.call("dxTelemetry/status", {}, timeout - out.initialize)
        out.first_status = time.perf_counter() - started
        out.rss_mib = conn.rss_mib()
        problems.add(
            ledger,
            "status",
            mismatches(ledger, status["days"], now.date() - timedelta(days=BACKFILL_DAYS)),
        )
        step = "later_status"
        later = []
        for _ in range(LATER_STATUSES):
            t = time.perf_counter()
            await conn.call("dxTelemetry/status", {}, timeout)
            later.append(time.perf_counter() - t)
        out.later_status = statistics.median(later)
        if flush:
            step = "flush_now"
            t = time.perf_counter()
            result = await conn.call(
                "workspace/executeCommand", {"command": "dxTelemetry.flushNow"}, timeout
            )
            out.flush_now = time.perf_counter() - t
            problems.add(ledger, "flushNow", flush_problems(result, due_days(ledger, now)))
        await conn.close(timeout)
    except asyncio.TimeoutError:
        setattr(out, step, math.inf)
        conn.kill()
        await conn.close(5)
    except Exception as exc:  # a changed answer must not stop the other measurements
        problems.add(ledger, f"sidecar, at {step}", f"{type(exc).__name__}: {str(exc)[:300]}")
        conn.kill()
        await conn.close(5)
    return out


def flush_problems(result: Any, due: set[tuple[str, str]]) -> list[str]:
    pushed = {(p["date"], p["tool"]) for p in result.get("pushed", [])}
    problems = []
    if pushed != due or result.get("failed") or result.get("unconfirmed"):
        problems.append(
            f"pushed {len(pushed)} (date, tool), expected {len(due)}; "
            f"failed {result.get('failed')}, unconfirmed {result.get('unconfirmed')}"
        )
    wrong = [p for p in result.get("pushed", []) if p.get("destination") != "outbox"]
    return problems + [f"not to the outbox: {p}" for p in wrong[:2]]


def cli(
    args: list[str], env: dict[str, str], timeout: float, check: Callable[[Any], list[str]]
) -> tuple[float | None, list[str]]:
    """Wall time of `python -m dx_lsp_telemetry ARGS` (inf: cut at `timeout`) and what is
    wrong with its output."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*SIDECAR, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return math.inf, []
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return wall, [f"exit {done.returncode}: {done.stderr.decode()[-300:]}"]
    try:
        return wall, check(json.loads(done.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        return wall, [f"unexpected output ({exc}): {done.stdout[:200]!r}"]


async def one_run(ledger: Ledger, scratch: Path, timeout: float, problems: Problems) -> Run:
    home = Path(tempfile.mkdtemp(prefix=f"h{ledger.days}d-", dir=scratch))
    dx = home / "dx"
    shutil.copytree(ledger.ledger_dir, dx / "ledger")
    env = clean_env(DX_TELEMETRY_HOME=str(dx), HOME=str(home))
    try:
        cold = await start(ledger, env, timeout, problems, flush=False)
        warm = await start(ledger, env, timeout, problems, flush=True)
        run = Run(cold, warm)
        today = datetime.now(timezone.utc).date()

        def check_report(out: Any) -> list[str]:
            return mismatches(ledger, out["days"], today - timedelta(days=29))

        def check_status(out: Any) -> list[str]:
            return mismatches(ledger, out["days"], today - timedelta(days=BACKFILL_DAYS))

        run.report, bad = cli(["report", "--days", "30", "--json"], env, timeout, check_report)
        problems.add(ledger, "report --json", bad)
        run.status_cli, bad = cli(["status", "--json"], env, timeout, check_status)
        problems.add(ledger, "status --json", bad)
        return run
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- the table -------------------------------------------------------------------------------


def median_of(values: Iterable[float | None]) -> float | None:
    """The median (inf if most runs were cut), or None if a run never got that far."""
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return statistics.median(v for v in vals if v is not None)


def show(value: float | None, scale: float, fmt: str, timeout: float) -> str:
    if value is None:
        return "-"
    return f">{timeout:g} s" if math.isinf(value) else format(value * scale, fmt)


def secs(value: float | None, timeout: float) -> str:
    shown = show(value, 1, ".2f", timeout)
    return shown if value is None or math.isinf(value) else shown + " s"


@dataclass
class Row:
    ledger: Ledger
    runs: list[Run]

    def fig(self, pick: Callable[[Run], float | None]) -> float | None:
        return median_of(pick(r) for r in self.runs)


def print_table(rows: list[Row], timeout: float) -> None:
    cols: list[tuple[str, Callable[[Run], float | None], float, str]] = [
        ("init ms", lambda r: r.cold.initialize, 1000, ".0f"),
        ("1st status cold ms", lambda r: r.cold.first_status, 1000, ".0f"),
        ("1st status warm ms", lambda r: r.warm.first_status, 1000, ".0f"),
        ("later status ms", lambda r: r.warm.later_status, 1000, ".1f"),
        ("RSS cold MiB", lambda r: r.cold.rss_mib, 1, ".1f"),
        ("RSS warm MiB", lambda r: r.warm.rss_mib, 1, ".1f"),
        ("report s", lambda r: r.report, 1, ".2f"),
        ("status s", lambda r: r.status_cli, 1, ".2f"),
        ("flushNow s", lambda r: r.warm.flush_now, 1, ".2f"),
    ]
    first = "ledger (days x events, MiB)"
    width = max(len(first), *(len(_ledger_cell(r.ledger)) for r in rows))
    head = f"{first:<{width}}" + "".join(f"  {c[0]:>{max(len(c[0]), 8)}}" for c in cols)
    print(head)
    print("-" * len(head))
    for row in rows:
        cells = [
            show(row.fig(pick), scale, fmt, timeout).rjust(max(len(name), 8))
            for name, pick, scale, fmt in cols
        ]
        print(f"{_ledger_cell(row.ledger):<{width}}  " + "  ".join(cells))


def _ledger_cell(ledger: Ledger) -> str:
    return f"{ledger.label} ({ledger.bytes / 2**20:.0f} MiB)"


def print_targets(rows: list[Row], timeout: float) -> None:
    target = next((r for r in rows if (r.ledger.days, r.ledger.events) == TARGET_LEDGER), None)

    def worst(pick: Callable[[Run], float | None]) -> tuple[float | None, str]:
        figs = [(row.fig(pick), row.ledger.label) for row in rows]
        if any(f is None for f, _ in figs):
            return None, next(label for f, label in figs if f is None)
        return max((f, label) for f, label in figs if f is not None)

    print("targets (issue 8):")
    checks: list[tuple[str, float | None, float, str, str]] = []
    if target is not None:
        label = target.ledger.label
        first_status = target.fig(lambda r: r.warm.first_status)
        rss = target.fig(lambda r: r.warm.rss_mib)
        flush_now = target.fig(lambda r: r.warm.flush_now)
        checks += [
            ("first status, second start", first_status, 0.3, "s", label),
            ("sidecar RSS after it", rss, 60, "MiB", label),
            ("flushNow, 7 days x ~33k events", flush_now, 2.0, "s", label),
        ]
    report, where = worst(lambda r: r.report)
    checks.append(("CLI report --days 30 --json (slowest)", report, 0.5, "s", where))
    status, where = worst(lambda r: r.status_cli)
    checks.append(("CLI status --json (slowest)", status, 0.3, "s", where))
    for name, value, limit, unit, where in checks:
        measured = value is not None and not math.isinf(value)
        shown = show(value, 1, ".2f", timeout) + (f" {unit}" if measured else "")
        met = value is not None and value < limit
        verdict = "yes" if met else "NO"
        print(f"  {name:<40} < {limit:g} {unit:<4} {shown:>10}  {verdict:<3}  ({where})")


def parse_ledgers(text: str) -> list[tuple[int, int]]:
    if text == "full":
        return list(FULL_GRID)
    out = []
    for item in text.split(","):
        days, _, events = item.partition("x")
        out.append((int(days), int(events)))
    return out


async def main_async(args: argparse.Namespace) -> None:
    specs = parse_ledgers(args.ledgers)
    ledgers = []
    for days, events in specs:
        ledger, spent = cached(days, events, args.seed)
        ledgers.append(ledger)
        made = f"generated in {spent:.1f} s" if spent is not None else "cached"
        print(
            f"ledger {ledger.label}: {ledger.bytes / 2**20:.0f} MiB in {days} files, "
            f"{ledger.end - timedelta(days=days - 1)}..{ledger.end} ({made})",
            flush=True,
        )
    grid = "the full 3x3 grid" if set(specs) == set(FULL_GRID) else "a subset of the 3x3 grid"
    print(
        f"Python {sys.version.split()[0]}, {args.runs} runs, {grid}; {load()}",
        flush=True,
    )
    problems = Problems()
    runs: dict[int, list[Run]] = {i: [] for i in range(len(ledgers))}
    with tempfile.TemporaryDirectory(prefix="dx-bench-history-") as tmp:
        for n in range(args.runs):
            for i, ledger in enumerate(ledgers):
                run = await one_run(ledger, Path(tmp), args.timeout, problems)
                runs[i].append(run)
                t = args.timeout
                print(
                    f"  run {n + 1}/{args.runs} {ledger.label}: first status cold "
                    f"{secs(run.cold.first_status, t)}, warm {secs(run.warm.first_status, t)}, "
                    f"flushNow {secs(run.warm.flush_now, t)}, report {secs(run.report, t)}, "
                    f"status {secs(run.status_cli, t)}",
                    file=sys.stderr,
                    flush=True,
                )
    rows = [Row(ledger, runs[i]) for i, ledger in enumerate(ledgers)]
    print(
        f"medians over {args.runs} runs; init/1st status: from spawn; cold: first start on a "
        f"fresh copy, warm: the second start; RSS after the first status; CLI with no sidecar "
        f"running; flushNow on the second start ({BACKFILL_DAYS} complete days due, outbox)"
    )
    print_table(rows, args.timeout)
    print_targets(rows, args.timeout)
    for line in problems.lines:
        print(f"PROBLEM {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--ledgers",
        default=",".join(f"{d}x{n}" for d, n in DEFAULT_LEDGERS),
        help="DAYSxEVENTS,... or `full` (the 3x3 grid)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per measurement")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"took {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
