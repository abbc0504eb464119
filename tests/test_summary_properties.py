"""Property tests: a day's totals are exact, whatever the events, their order, their duplicates
and however many writers append them to one ledger.

The reference below is computed independently of the product: exact `Fraction`s of the floats'
shortest reprs, the dedupe rule of README.md (the larger token total wins, on a tie the later
recorded version), and half-up rounding done by hand.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.ledger.recorder import record_event
from dx_lsp_telemetry.push.journal import Journal
from dx_lsp_telemetry.push.pusher import Pusher
from dx_lsp_telemetry.push.status import StatusInputs, build_status
from dx_lsp_telemetry.record.events import EventRules, validate_event
from dx_lsp_telemetry.settings.days import utc_dates_overlapping
from dx_lsp_telemetry.settings.settings import Settings

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
DEFAULT_TOOL = "acme-ai"
EMAIL = "dev@example.com"
EVENT_IDS = [f"ev-{i}" for i in range(6)] + ["x" * 200, "ünïcødé id"]
TOOLS = [DEFAULT_TOOL, "other-tool", "third.tool"]
MODELS = ["model-a", "model-b"]
METRIC_KEYS = ["accepted", "lines.added", "x_y-z"]
OFFSETS = [0, 330, -480, 14 * 60, -12 * 60, 45]  # minutes east of UTC

# -- strategies --------------------------------------------------------------------------

#: small values make ties and duplicates common; large ones test the exact sums
token_counts = st.one_of(
    st.none(),
    st.integers(0, 3),
    st.integers(0, 10**12),
    st.integers(0, 10**6).map(float),  # 12.0 is the JSON integer 12
)
amounts = st.one_of(
    st.integers(0, 10**12),
    st.floats(0, 1000, allow_nan=False, allow_infinity=False),
    st.floats(0, 1e12, allow_nan=False, allow_infinity=False),  # subnormals to the 10^12 cap
    st.sampled_from([0.005, 0.015, 0.125, 0.5, 1.5, 2.675, 0.1, 0.2, 0.3]),
)


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, date]:
    """An RFC 3339 text in some offset, and the UTC date it falls on (2 to 6 days ago)."""
    today = datetime.now(timezone.utc).date()
    utc_day = today - timedelta(days=draw(st.integers(2, 6)))
    seconds = draw(st.integers(0, 86_399))
    micros = draw(st.sampled_from([0, 0, 1, 500_000, 999_999]))
    instant = datetime(utc_day.year, utc_day.month, utc_day.day, tzinfo=timezone.utc) + timedelta(
        seconds=seconds, microseconds=micros
    )
    offset = draw(st.sampled_from(OFFSETS))
    local = instant.astimezone(timezone(timedelta(minutes=offset)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{micros:06d}" if micros else "")
    if offset == 0:
        text += draw(st.sampled_from(["Z", "+00:00"]))
    else:
        sign = "+" if offset > 0 else "-"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return text, utc_day


@st.composite
def raw_events(draw: st.DrawFn, event_ids: list[str] = EVENT_IDS) -> dict[str, Any]:
    """One valid recordUsage event as a client would send it (JSON types only)."""
    ts, _ = draw(timestamps())
    raw: dict[str, Any] = {"event_id": draw(st.sampled_from(event_ids)), "timestamp": ts}
    tool = draw(st.sampled_from([None, *TOOLS]))
    if tool is not None:
        raw["tool"] = tool
    model = draw(st.sampled_from([None, *MODELS]))
    if model is not None:
        raw["model"] = model
    for name in TOKEN_FIELDS:
        value = draw(token_counts)
        if value is not None:
            raw[name] = value
    if draw(st.booleans()):
        raw["spend_cents"] = draw(amounts)
    metrics = draw(st.dictionaries(st.sampled_from(METRIC_KEYS), amounts, max_size=3))
    if metrics:
        raw["metrics"] = metrics
    return raw


# -- the independent reference ---------------------------------------------------------


def exact(value: int | float) -> Fraction:
    """The exact number a JSON number denotes: a float by its shortest repr."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def half_up(value: Fraction, unit: Fraction = Fraction(1)) -> Fraction:
    return Fraction(math.floor(value / unit + Fraction(1, 2))) * unit


def json_number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def utc_date_of(ts: str) -> date:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc).date()


@dataclass
class Ref:
    events: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    spend: Fraction = Fraction(0)
    metrics: dict[str, Fraction] = field(default_factory=dict)

    def add(self, raw: dict[str, Any]) -> None:
        self.events += 1
        for name in TOKEN_FIELDS:
            self.tokens[name] += int(raw.get(name, 0))
        self.spend += exact(raw.get("spend_cents", 0))
        for key, value in raw.get("metrics", {}).items():
            self.metrics[key] = self.metrics.get(key, Fraction(0)) + exact(value)

    def status_totals(self) -> dict[str, Any]:
        return {
            "events": self.events,
            **self.tokens,
            "spend_cents": float(half_up(self.spend, Fraction(1, 100))),
        }


def token_total(raw: dict[str, Any]) -> int:
    return sum(int(raw.get(name, 0)) for name in TOKEN_FIELDS)


def winners(recorded_in_order: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dedupe by event_id: the larger token total wins; on a tie, the later recorded one."""
    best: dict[str, dict[str, Any]] = {}
    for raw in recorded_in_order:
        old = best.get(raw["event_id"])
        if old is None or token_total(raw) >= token_total(old):
            best[raw["event_id"]] = raw
    return list(best.values())


def reference(recorded_in_order: list[dict[str, Any]]) -> dict[tuple[str, str], Ref]:
    result: dict[tuple[str, str], Ref] = {}
    for raw in winners(recorded_in_order):
        key = (utc_date_of(raw["timestamp"]).isoformat(), raw.get("tool", DEFAULT_TOOL))
        result.setdefault(key, Ref()).add(raw)
    return result


def reference_record(day: str, tool: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    total = Ref()
    by_model: dict[str, Ref] = {}
    for raw in events:
        total.add(raw)
        if "model" in raw:
            by_model.setdefault(raw["model"], Ref()).add(raw)
    record: dict[str, Any] = {
        "email": EMAIL,
        "date": day,
        "is_active": True,
        "tool": tool,
        "metrics": {
            "events": total.events,
            **{k: json_number(v) for k, v in total.metrics.items()},
        },
        **total.tokens,
        "spend_cents": int(half_up(total.spend)),
    }
    if by_model:
        record["model_breakdowns"] = [
            {"model": model, **ref.tokens, "spend_cents": int(half_up(ref.spend))}
            for model, ref in sorted(by_model.items())
        ]
    return record


def reference_records(recorded_in_order: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for raw in winners(recorded_in_order):
        key = (utc_date_of(raw["timestamp"]).isoformat(), raw.get("tool", DEFAULT_TOOL))
        groups.setdefault(key, []).append(raw)
    # the push order: oldest day first, tools by name
    return [reference_record(d, t, events) for (d, t), events in sorted(groups.items())]


# -- what the product says ----------------------------------------------------------------

SETTINGS = Settings(email=EMAIL, tool=DEFAULT_TOOL, model_breakdowns=True)


def window_dates() -> list[date]:
    today = datetime.now(timezone.utc).date()
    return utc_dates_overlapping(today - timedelta(days=8), today, "utc")


def status_totals(home: Path, index: LedgerIndex) -> dict[tuple[str, str], dict[str, Any]]:
    inputs = StatusInputs(home, False, SETTINGS, [], None, datetime.now(timezone.utc))
    status = build_status(inputs, index, Journal(home / "journal.jsonl"))
    return {(d["date"], d["tool"]): d["totals"] for d in status["days"]}


def assert_matches_reference(home: Path, recorded_in_order: list[dict[str, Any]]) -> None:
    expected = {key: ref.status_totals() for key, ref in reference(recorded_in_order).items()}
    fresh = LedgerIndex(home / "ledger")
    assert status_totals(home, fresh) == expected
    # the records a push would send now (every day here is complete), oldest first
    records = Pusher(DataPaths(home)).dry_run(SETTINGS, None)
    assert records == reference_records(recorded_in_order)
    # nothing was sent or written by the dry run
    assert not (home / "journal.jsonl").exists()


# -- the properties -------------------------------------------------------------------------


def at(days: int, hour: int = 12) -> str:
    d = datetime.now(timezone.utc).date() - timedelta(days=days)
    return f"{d.isoformat()}T{hour:02d}:00:00Z"


def pinned(*events: dict[str, Any], writers: list[int] | None = None) -> Any:
    """An example always tried, whatever hypothesis generates."""
    writer_of = (writers or []) + [0] * (30 - len(writers or []))
    return example(events=list(events), writer_of=writer_of, refresh_live=[True] * 30)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# a tie on the token total: the later recorded version wins, with its tool, day and spend
@pinned(
    {"event_id": "ev-0", "timestamp": at(2), "input_tokens": 5, "spend_cents": 1.0},
    {"event_id": "ev-0", "timestamp": at(3), "output_tokens": 5, "spend_cents": 2.5, "tool": "b"},
    writers=[0, 1],
)
# a larger total wins even when recorded first
@pinned(
    {"event_id": "ev-1", "timestamp": at(2), "input_tokens": 6, "metrics": {"accepted": 1}},
    {"event_id": "ev-1", "timestamp": at(2), "input_tokens": 5, "metrics": {"accepted": 7}},
    writers=[2, 1],
)
# fractional cents are summed exactly (0.1 + 0.2 is 0.3), then rounded half up once
@pinned(
    *[
        {"event_id": f"c{n}", "timestamp": at(4), "spend_cents": c}
        for n, c in enumerate((0.125, 0.125, 0.25, 0.1, 0.2))
    ],
    {"event_id": "c9", "timestamp": at(5), "spend_cents": 2.675, "metrics": {"x_y-z": 0.1}},
    {"event_id": "c8", "timestamp": at(5), "spend_cents": 0, "metrics": {"x_y-z": 0.2}},
    writers=[0, 1, 2, 0, 1, 2, 0],
)
# extremes: huge and subnormal amounts, integral floats as token counts
@pinned(
    {"event_id": "x1", "timestamp": at(6), "spend_cents": 1e12, "metrics": {"accepted": 1e12}},
    {"event_id": "x2", "timestamp": at(6), "spend_cents": 5e-324, "metrics": {"accepted": 5e-324}},
    {"event_id": "x3", "timestamp": at(6), "input_tokens": 12.0, "cache_read_tokens": 10**12},
)
@given(
    events=st.lists(raw_events(), min_size=1, max_size=30),
    writer_of=st.lists(st.integers(0, 2), min_size=30, max_size=30),
    refresh_live=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_totals_and_records_match_the_reference_across_several_writers(
    events: list[dict[str, Any]], writer_of: list[int], refresh_live: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ledger_dir = home / "ledger"
        # three writers with their own views: three sidecars (or CLIs) on one data folder
        writers = [(LedgerWriter(ledger_dir), LedgerIndex(ledger_dir)) for _ in range(3)]
        live = LedgerIndex(ledger_dir)  # a view tailing the files while they grow
        rules = EventRules(DEFAULT_TOOL, datetime.now(timezone.utc), "utc", 7)
        seen: set[str] = set()
        for n, raw in enumerate(events):
            writer, index = writers[writer_of[n]]
            event = validate_event(raw, rules)
            result = record_event(writer, index, event, "utc", window=rules.window_files)
            assert result["duplicate"] == (raw["event_id"] in seen)
            assert result["date"] == utc_date_of(raw["timestamp"]).isoformat()
            seen.add(raw["event_id"])
            if refresh_live[n]:
                live.refresh()

        assert_matches_reference(home, events)
        # the incrementally tailed view agrees with a fresh read
        expected = {key: ref.status_totals() for key, ref in reference(events).items()}
        assert status_totals(home, live) == expected


#: records the events of a JSON file through the product, once the parent says go
WRITER_SCRIPT = """
import json, sys
from pathlib import Path
from dx_lsp_telemetry.settings.days import utc_now
from dx_lsp_telemetry.record.events import EventRules, validate_event
from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.recorder import record_event

events = json.loads(Path(sys.argv[1]).read_text())
ledger = Path(sys.argv[2])
writer, index = LedgerWriter(ledger), LedgerIndex(ledger)
rules = EventRules("acme-ai", utc_now(), "utc", 7)
print("ready", flush=True)
sys.stdin.readline()
answers = [
    record_event(writer, index, validate_event(raw, rules), "utc", window=rules.window_files)
    for raw in events
]
print(json.dumps([a["duplicate"] for a in answers]), flush=True)
"""


def without_ties(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Across processes the recording order is unknown: drop versions that would tie."""
    seen: set[tuple[str, int]] = set()
    kept: list[list[dict[str, Any]]] = []
    for batch in batches:
        kept.append([])
        for raw in batch:
            key = (raw["event_id"], token_total(raw))
            if key not in seen:
                seen.add(key)
                kept[-1].append(raw)
    return kept


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    batches=st.lists(
        st.lists(raw_events(EVENT_IDS[:4]), min_size=1, max_size=12), min_size=3, max_size=3
    ).map(without_ties)
)
def test_concurrent_processes_give_the_reference_totals(
    batches: list[list[dict[str, Any]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        procs = []
        for n, batch in enumerate(batches):
            events_file = home / f"batch-{n}.json"
            events_file.write_text(json.dumps(batch))
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", WRITER_SCRIPT, str(events_file), str(home / "ledger")],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        try:
            for proc in procs:  # all imported and waiting: then they append at the same time
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            deadline = time.monotonic() + 60
            outputs = [
                proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0] for proc in procs
            ]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert [p.returncode for p in procs] == [0, 0, 0]
        duplicates = [json.loads(out) for out in outputs]

        # exactly one append of each id, in whichever process, saw no earlier version
        first_sightings: dict[str, int] = {}
        for batch, flags in zip(batches, duplicates):
            assert len(flags) == len(batch)
            for raw, duplicate in zip(batch, flags):
                if not duplicate:
                    first_sightings[raw["event_id"]] = first_sightings.get(raw["event_id"], 0) + 1
        all_events = [e for batch in batches for e in batch]
        assert first_sightings == dict.fromkeys({e["event_id"] for e in all_events}, 1)

        # no ties across versions, so any interleaving gives the same winners
        assert_matches_reference(home, all_events)
