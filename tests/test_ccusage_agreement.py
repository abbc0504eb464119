"""Agreement with a peer: ccusage 20.0.24 (`claude daily` / `codex daily --json -O -z UTC`) and
our `scan` on the same generated Claude Code and Codex history give the same per-day input,
output, cache-write and cache-read totals per tool, and the same estimated spend.

The history holds every trap on which both tools' rules agree: streaming snapshots, copies in
resumed sessions and across CLAUDE_CONFIG_DIR roots, sidechain replays, Codex re-emits, forks and
subagents replaying their parent (one whose parent was archived), archived copies, midnight. We
read it in two stages (a snapshot of the disk mid-history, with half-written lines, then the
rest) as a sidecar would; ccusage reads the final files whole.

Where our rules deliberately differ (README, "Deliberate differences from ccusage"), a test per
difference runs both tools on a tiny fixture and pins both numbers: if either side changes, the
test fails.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.codex import Codex
from tests.harness import run_cli
from tests.real.captured import copy_files
from tests.source_logs import (
    CCUSAGE,
    ccusage_daily,
    ccusage_tokens,
    claude_assistant,
    claude_usage,
    claude_user,
    codex_meta,
    codex_tokens,
    codex_turn,
    codex_usage,
    compact,
    day_start,
    ingestor,
    ledger_bytes,
    ledger_days,
    ledger_tokens,
    plus,
    rollout_path,
    write_lines,
)


@pytest.fixture(autouse=True)
def peer_installed() -> None:
    assert os.access(CCUSAGE, os.X_OK), f"no ccusage 20.0.24 at {CCUSAGE}: run `make peers`"


SONNET_4 = "claude-sonnet-4-20250514"
CLAUDE_MODELS = [
    SONNET_4,
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
]
CODEX_MODELS = ["gpt-5-codex", "gpt-5", "gpt-5.1-codex"]
DAYS = 4
MS = timedelta(milliseconds=1)
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)


# -- the generated history ---------------------------------------------------------------------


@dataclass
class LogFile:
    """A log file as its tool writes it: each line with the moment it is written."""

    path: Path
    lines: list[tuple[datetime, str]] = field(default_factory=list)
    #: where the file was before it was moved (`codex archive`)
    first_path: Path | None = None
    #: copied into place only at the end (an archived copy)
    late: bool = False

    def add(self, written: datetime, line: dict[str, Any]) -> None:
        assert not self.lines or self.lines[-1][0] <= written, "a file is written in order"
        self.lines.append((written, compact(line) + "\n"))


Totals = dict[str, list[int]]  # day -> [input, output, cache write, cache read]


@dataclass
class History:
    root: Path
    claude_dirs: list[Path]
    codex_homes: list[Path]
    files: list[LogFile] = field(default_factory=list)
    expected: dict[str, Totals] = field(
        default_factory=lambda: {
            "claude": defaultdict(lambda: [0, 0, 0, 0]),
            "codex": defaultdict(lambda: [0, 0, 0, 0]),
        }
    )
    traps: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def file(self, path: Path, **kwargs: Any) -> LogFile:
        f = LogFile(path, **kwargs)
        self.files.append(f)
        return f

    def count(self, tool: str, ts: datetime, tokens: tuple[int, int, int, int]) -> None:
        day = self.expected[tool][ts.date().isoformat()]
        for i, n in enumerate(tokens):
            day[i] += n

    # -- writing it to disk, as of a moment --------------------------------------------------

    def write_until(self, moment: datetime) -> None:
        """The disk at `moment`: every line written by then, and half of the line being written."""
        for f in self.files:
            if f.late:
                continue
            text = "".join(line for written, line in f.lines if written <= moment)
            following = next((line for written, line in f.lines if written > moment), "")
            text += following[: len(following) // 2]
            if following and text:
                self.traps["half-written lines at the first read"] += 1
            if text:
                path = f.first_path or f.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)

    def write_all(self) -> None:
        """The rest: appended to what is there (moved first where the tool moved the file)."""
        for f in self.files:
            if f.first_path is not None and f.first_path.exists():
                f.path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f.first_path, f.path)
                self.traps["rollouts archived after the first read"] += 1
            whole = "".join(line for _, line in f.lines)
            there = f.path.read_text() if f.path.exists() else ""
            assert whole.startswith(there)
            f.path.parent.mkdir(parents=True, exist_ok=True)
            with open(f.path, "a") as out:
                out.write(whole[len(there) :])


def uuid_like(rng: random.Random, head: str) -> str:
    tail = f"{rng.randrange(16**3):03x}-8000-{rng.randrange(16**12):012x}"
    return f"{head}-{rng.randrange(16**4):04x}-4{tail}"


@dataclass(frozen=True)
class Response:
    """One Claude API response, as its final snapshot is logged."""

    ts: datetime
    message_id: str
    request_id: str
    model: str
    inp: int
    out: int
    cache_write: int
    cache_read: int
    one_hour: int | None  # the 1-hour part of the cache writes; None: no `cache_creation` object
    cost: float | None

    def line(self, session: str, ts: datetime, out: int | None = None, **kwargs: Any) -> Any:
        split = None
        if self.one_hour is not None:
            split = {
                "ephemeral_5m_input_tokens": self.cache_write - self.one_hour,
                "ephemeral_1h_input_tokens": self.one_hour,
            }
        usage = claude_usage(
            self.inp,
            self.out if out is None else out,
            self.cache_write,
            self.cache_read,
            split=split,
        )
        return claude_assistant(
            ts,
            session,
            self.message_id,
            kwargs.pop("request_id", self.request_id),
            kwargs.pop("usage", usage),
            model=self.model,
            cost_usd=self.cost,
            **kwargs,
        )


def claude_history(h: History, rng: random.Random, base: datetime) -> None:
    n = 0

    def response(ts: datetime, model: str | None = None, **fixed: int) -> Response:
        nonlocal n
        n += 1
        cw = fixed.get("cw", rng.choice([0, rng.randint(100, 5000)]))
        return Response(
            ts,
            f"msg_01{n:06d}",
            f"req_01{n:06d}",
            model or rng.choice(CLAUDE_MODELS),
            fixed.get("inp", rng.randint(1, 40)),
            fixed.get("out", rng.randint(50, 3000)),
            cw,
            fixed.get("cr", rng.randint(0, 60000)),
            # both forms of the cache writes: the 5 min / 1 h split, or the total only
            rng.choice([None, 0, rng.randint(0, cw)]),
            round(rng.uniform(0.001, 0.05), 6) if rng.random() < 0.2 else None,
        )

    def count(r: Response) -> None:
        h.count("claude", r.ts, (r.inp, r.out, r.cache_write, r.cache_read))

    for day in range(DAYS):
        for s in range(3):
            root = h.claude_dirs[s % 2]
            session = uuid_like(rng, f"c1a0{day:04x}")
            project = f"-home-dev-proj{s}"
            main = h.file(root / "projects" / project / f"{session}.jsonl")
            t = base + timedelta(days=day, hours=4 * s, minutes=rng.randint(0, 50))
            crossing = day == DAYS - 1 and s == 2  # runs past midnight UTC
            if crossing:
                t = t.replace(hour=23, minute=30)
            midnight = t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            responses = []
            for k in range(rng.randint(3, 6)):
                main.add(t, claude_user(t, session, "please do the thing"))
                # streaming snapshots: the same ids, output growing, the last one final
                snapshots = rng.randint(1, 3)
                if crossing and k == 1:  # the final snapshot lands after midnight
                    t, snapshots = midnight - 500 * MS, 2
                    h.traps["streamed across midnight"] += 1
                r = response(t + (snapshots - 1) * 400 * MS)
                for i in range(snapshots):
                    out = r.out * (i + 1) // snapshots
                    main.add(t + i * 400 * MS, r.line(session, t + i * 400 * MS, out))
                h.traps["streaming snapshots"] += snapshots - 1
                count(r)
                responses.append(r)
                t += timedelta(minutes=rng.randint(1, 20), seconds=rng.randint(0, 59))
            # a /btw side question: replays two of the session's responses (new request ids,
            # more cache reads), then its own answer, streamed twice
            side = h.file(
                root / "projects" / project / session / "subagents" / f"agent-{n:x}.jsonl"
            )
            for r in responses[:2]:
                usage = claude_usage(r.inp, r.out, r.cache_write, r.cache_read + 90000)
                line = r.line(
                    session, t, request_id=f"{r.request_id}_side", usage=usage, sidechain=True
                )
                side.add(t, line)
                h.traps["sidechain replays"] += 1
            answer = response(t + 4 * SEC, SONNET_4, inp=5, out=77, cw=0, cr=1200)
            side.add(t + 3 * SEC, answer.line(session, t + 3 * SEC, 30, sidechain=True))
            side.add(t + 4 * SEC, answer.line(session, t + 4 * SEC, sidechain=True))
            count(answer)
            if s == 0:
                # resumed, in the other root: copies of the first two responses, then its own
                resumed = uuid_like(rng, f"c1a1{day:04x}")
                copy = h.file(h.claude_dirs[1] / "projects" / project / f"{resumed}.jsonl")
                t += 30 * MIN
                for r in responses[:2]:
                    copy.add(t, r.line(resumed, r.ts))
                    h.traps["copies in a resumed session"] += 1
                own = response(t, SONNET_4, inp=3, out=444, cw=900, cr=30000)
                copy.add(t, own.line(resumed, t))
                count(own)
                # an error message: no model, no tokens, no cost
                synthetic = response(t + MIN, "<synthetic>", inp=0, out=0, cw=0, cr=0)
                copy.add(t + MIN, replace(synthetic, cost=None).line(resumed, t + MIN))


def codex_history(h: History, rng: random.Random, base: datetime) -> None:
    def random_usage() -> dict[str, int]:
        inp = rng.randint(2000, 90000)
        out = rng.randint(50, 4000)
        return codex_usage(inp, rng.randint(0, inp), out, rng.randint(0, out))

    def count(ts: datetime, last: dict[str, int]) -> None:
        cached = last["cached_input_tokens"]
        h.count("codex", ts, (last["input_tokens"] - cached, last["output_tokens"], 0, cached))

    for day in range(DAYS):
        for s in range(2):
            home = h.codex_homes[s]
            session = uuid_like(rng, f"0199{day:04x}")
            start = base + timedelta(days=day, hours=2 + 9 * s, minutes=rng.randint(0, 50))
            if day == DAYS - 1 and s == 1:
                start = start.replace(hour=23, minute=30)  # runs past midnight
            model = rng.choice(CODEX_MODELS)
            moved = day == 2 and s == 0  # archived later: its fork is read before it
            path = rollout_path(home, start, session, archived=moved)
            f = h.file(path, first_path=rollout_path(home, start, session) if moved else None)
            f.add(start, codex_meta(start, session))
            if day != 3:  # day 3's first turn comes before any turn_context: gpt-5 assumed
                f.add(start + 50 * MS, codex_turn(start + 50 * MS, model))
            total = codex_usage(0, 0, 0)
            history: list[tuple[dict[str, int], dict[str, int]]] = []  # (total, last)
            row_times: list[datetime] = []
            t = start
            for k in range(rng.randint(2, 5)):
                t += timedelta(minutes=rng.randint(1, 40), seconds=rng.randint(1, 59))
                if day == 3 and k == 1:
                    f.add(t - 2 * SEC, codex_turn(t - 2 * SEC, model))
                f.add(t - SEC, codex_tokens(t - SEC, None, None, null_info=True))
                last = random_usage()
                total = plus(total, last)
                f.add(t, codex_tokens(t, total, last))
                count(t, last)
                history.append((total, last))
                row_times.append(t)
                for _ in range(rng.randint(0, 3)):  # the unchanged total re-emitted
                    t += rng.randint(1, 9) * SEC
                    other_last = last if rng.random() < 0.5 else random_usage()
                    f.add(t, codex_tokens(t, total, other_last))
                    h.traps["re-emits"] += 1
            if s == 0:
                # a fork: replays the parent's rows verbatim, stamped at the fork, then its turn
                fork = uuid_like(rng, f"0199{day:04x}")
                at = t + 5 * MIN
                child = h.file(rollout_path(home, at, fork))
                child.add(at, codex_meta(at, fork, forked_from=session))
                child.add(at + MS, codex_turn(at + MS, model))
                for j, (row_total, row_last) in enumerate(history):
                    ts = at + (2 + j) * MS
                    # the fork of the archived parent keeps the rows' own timestamps: only the
                    # parent's rows tell the replay apart (its rollout is read after this one)
                    stamp = row_times[j] if moved else ts
                    child.add(ts, codex_tokens(stamp, row_total, row_last))
                    h.traps["fork replay rows"] += 1
                own = codex_usage(5000, 3000, 700, 100)
                child.add(
                    at + 24 * SEC, codex_tokens(at + 24 * SEC, plus(history[-1][0], own), own)
                )
                count(at + 24 * SEC, own)
                # a subagent: replays the parent's first row, then works on its own
                agent = uuid_like(rng, f"0199{day:04x}")
                at = t + 9 * MIN
                sub = h.file(rollout_path(home, at, agent))
                sub.add(at, codex_meta(at, agent, spawned_by=session))
                sub.add(at + MS, codex_turn(at + MS, model))
                sub.add(at + 2 * MS, codex_tokens(at + 2 * MS, *history[0]))
                h.traps["subagent replay rows"] += 1
                own = codex_usage(2500, 1000, 300, 20)
                sub.add(at + 7 * SEC, codex_tokens(at + 7 * SEC, plus(history[0][0], own), own))
                count(at + 7 * SEC, own)
            if day == 3 and s == 1:  # an archived copy next to the active rollout
                copy = h.file(home / "archived_sessions" / path.name, late=True)
                copy.lines = list(f.lines)
                h.traps["archived copies"] += 1


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("agreement")
    h = History(
        root,
        claude_dirs=[root / "claude-a", root / "claude-b"],
        codex_homes=[root / "codex-a", root / "codex-b"],
    )
    rng = random.Random(20260922)
    base = day_start(DAYS + 2) + timedelta(hours=9)
    claude_history(h, rng, base)
    codex_history(h, rng, base)
    # a sidecar reads the history as it is written: mid-history (half-written lines and all),
    # later the rest, and once more; each `scan` is a new process
    data = root / "data"
    env = {
        "CLAUDE_CONFIG_DIR": ",".join(map(str, h.claude_dirs)),
        "CODEX_HOME": ",".join(map(str, h.codex_homes)),
        "HOME": str(root / "nohome"),
    }

    def scan_both() -> list[str]:
        outputs = []
        for source in ("claude-code", "codex"):
            done = run_cli(data, "scan", "--source", source, **env)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
        return outputs

    h.write_until(base + timedelta(days=2, hours=2, minutes=40))
    scan_both()
    h.write_all()
    scan_both()
    before = ledger_bytes(data)
    assert all("0 records read" in out for out in scan_both())
    assert ledger_bytes(data) == before
    return h


def expected(h: History, tool: str) -> dict[str, tuple[int, int, int, int]]:
    return {day: (t[0], t[1], t[2], t[3]) for day, t in sorted(h.expected[tool].items())}


def test_the_generated_history_has_every_agreeing_trap(history: History) -> None:
    assert set(history.traps) == {
        "streaming snapshots",
        "streamed across midnight",
        "sidechain replays",
        "copies in a resumed session",
        "re-emits",
        "fork replay rows",
        "subagent replay rows",
        "archived copies",
        "half-written lines at the first read",
        "rollouts archived after the first read",
    }
    assert all(n > 0 for n in history.traps.values())
    assert len(expected(history, "claude")) == DAYS + 1  # a session and a stream past midnight
    assert len(expected(history, "codex")) == DAYS + 1


@pytest.mark.parametrize(("tool", "label"), [("claude", "claude-code"), ("codex", "codex")])
def test_per_day_token_totals_agree_with_ccusage(history: History, tool: str, label: str) -> None:
    logs = history.claude_dirs if tool == "claude" else history.codex_homes
    peer = ccusage_tokens(tool, Path(",".join(map(str, logs))), history.root / tool)
    ours = ledger_tokens(history.root / "data", label)
    assert ours == peer
    assert ours == expected(history, tool)  # and both are what the generator meant


def test_report_json_shows_the_same_per_day_totals(history: History) -> None:
    done = run_cli(history.root / "data", "report", "--json", "--days", "14")
    assert done.returncode == 0, done.stderr
    shown: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for day in json.loads(done.stdout)["days"]:
        t = day["totals"]
        shown[(day["tool"], day["date"])] = (
            t["input_tokens"],
            t["output_tokens"],
            t["cache_write_tokens"],
            t["cache_read_tokens"],
        )
    for tool, label in (("claude", "claude-code"), ("codex", "codex")):
        for day, tokens in expected(history, tool).items():
            assert shown[(label, day)] == tokens


@pytest.mark.parametrize(
    ("tool", "label", "cost_field"),
    [("claude", "claude-code", "totalCost"), ("codex", "codex", "costUSD")],
)
def test_estimated_spend_per_day_agrees_with_ccusage(
    history: History, tool: str, label: str, cost_field: str
) -> None:
    """Same list prices for these models (no request reaches a long-context tier; 1-hour cache
    writes priced as such); logged costs (costUSD) are used as they are by both."""
    logs = history.claude_dirs if tool == "claude" else history.codex_homes
    peer = ccusage_daily(tool, Path(",".join(map(str, logs))), history.root / tool)
    ours = ledger_days(history.root / "data", label)
    assert set(ours) == set(peer)
    for day, row in peer.items():
        assert float(ours[day].spend_cents) / 100 == pytest.approx(row[cost_field], rel=1e-9)
        assert ours[day].estimated_cents is not None and ours[day].estimated_cents > 0


# -- deliberate differences: both tools' numbers, pinned -------------------------------------------

T0 = day_start(3) + timedelta(hours=10)
DAY = T0.date().isoformat()
S = "3f2a7c1e-5b4d-4e8f-9a6b-0c1d2e3f4a5b"
X = "0199a3c0-1111-7000-8000-00000000000a"
Y = "0199a3c0-2222-7000-8000-00000000000b"
PARENT = "0199a3c0-ffff-7000-8000-00000000000f"
u = codex_usage


def both(
    tmp_path: Path, tool: str, build: Callable[[Path], object]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ccusage's per-day tokens, ours) on the fixture `build` writes."""
    logs = tmp_path / "logs"
    build(logs)
    peer = ccusage_tokens(tool, logs, tmp_path)
    source = ClaudeCode() if tool == "claude" else Codex()
    ingestor(tmp_path / "data", source, logs).scan()
    return peer, ledger_tokens(tmp_path / "data", source.label)


def claude_file(logs: Path) -> Path:
    return logs / "projects" / "-home-dev-proj" / f"{S}.jsonl"


def test_d1_requestless_streaming_copies_count_once_here_every_time_in_ccusage(
    tmp_path: Path,
) -> None:
    def build(logs: Path) -> None:
        write_lines(
            claude_file(logs),
            [
                claude_assistant(T0, S, "msg_1", None, claude_usage(5, 10)),
                claude_assistant(T0 + SEC, S, "msg_1", None, claude_usage(5, 25)),
            ],
        )

    peer, ours = both(tmp_path, "claude", build)
    assert peer == {DAY: (10, 35, 0, 0)}  # ccusage daily: (session, id, timestamp) differ
    assert ours == {DAY: (5, 25, 0, 0)}  # ours: (session, id), the larger copy


def test_d2_a_null_field_drops_the_line_in_ccusage_not_here(tmp_path: Path) -> None:
    def build(logs: Path) -> None:
        line = claude_assistant(T0, S, "msg_1", "req_1", claude_usage(5, 10))
        line["costUSD"] = None
        write_lines(
            claude_file(logs), [line, claude_assistant(T0, S, "msg_2", "req_2", claude_usage(1, 2))]
        )

    peer, ours = both(tmp_path, "claude", build)
    assert peer == {DAY: (1, 2, 0, 0)}
    assert ours == {DAY: (6, 12, 0, 0)}


def test_d3_an_empty_cache_creation_object_keeps_the_total_here(tmp_path: Path) -> None:
    def build(logs: Path) -> None:
        usage = claude_usage(5, 10, 1000, 0, split={})
        write_lines(claude_file(logs), [claude_assistant(T0, S, "msg_1", "req_1", usage)])

    peer, ours = both(tmp_path, "claude", build)
    assert peer == {DAY: (5, 10, 0, 0)}  # ccusage: the (empty) object wins
    assert ours == {DAY: (5, 10, 1000, 0)}  # ours: the split only when it says something


def test_d3b_real_claude_code_over_a_gateway_a_zero_split_keeps_the_total_here(
    tmp_path: Path,
) -> None:
    """The real Claude Code 2.1.328 transcript (tests/real/captures): a zero 5m/1h split beside
    `cache_creation_input_tokens` 700 and 701, which the API reported as written."""
    logs = copy_files("claude-code", "home/.claude", tmp_path / "logs")
    peer = ccusage_tokens("claude", logs, tmp_path)
    ingestor(tmp_path / "data", ClaudeCode(), logs, settings={"retentionDays": 3650}).scan()
    ours = ledger_tokens(tmp_path / "data", "claude-code")
    assert peer.keys() == ours.keys() and len(peer) == 1  # the capture's day
    assert list(peer.values()) == [(2001, 101, 0, 401)]  # ccusage: the (zero) split wins
    assert list(ours.values()) == [(2001, 101, 1401, 401)]  # ours: the larger of split and total


def test_d4_microsecond_timestamps_are_read_here_dropped_by_ccusage(tmp_path: Path) -> None:
    def build(logs: Path) -> None:
        micro = claude_assistant(
            T0.strftime("%Y-%m-%dT%H:%M:%S.123456Z"), S, "msg_1", "req_1", claude_usage(5, 10)
        )
        write_lines(
            claude_file(logs),
            [micro, claude_assistant(T0, S, "msg_2", "req_2", claude_usage(1, 2))],
        )

    peer, ours = both(tmp_path, "claude", build)
    assert peer == {DAY: (1, 2, 0, 0)}
    assert ours == {DAY: (6, 12, 0, 0)}


def rollout(logs: Path, session: str, rows: list[Any], start: datetime = T0, **meta: Any) -> Path:
    path = rollout_path(logs, start, session)
    lines = [codex_meta(start, session, **meta), codex_turn(start + 50 * MS, "gpt-5")]
    lines += [codex_tokens(start + dt, total, last) for dt, total, last in rows]
    write_lines(path, lines)
    return path


@pytest.mark.parametrize(
    ("rows", "peer_counts", "our_counts"),
    [
        pytest.param(  # the second turn's token_count was lost: the total jumps by two turns
            [
                (10 * SEC, u(1000, 0, 100), u(1000, 0, 100)),
                (30 * SEC, u(3000, 0, 300), u(1000, 0, 100)),
            ],
            (2000, 200, 0, 0),  # ccusage sums `last`
            (3000, 300, 0, 0),  # ours: the growth of the total
            id="lost row",
        ),
        pytest.param(  # the first row already carries history (a resumed or partial file)
            [
                (10 * SEC, u(10000, 0, 1000), u(1000, 0, 100)),
                (30 * SEC, u(12000, 0, 1200), u(2000, 0, 200)),
            ],
            (3000, 300, 0, 0),
            (12000, 1200, 0, 0),
            id="first total above last",
        ),
        pytest.param(
            [
                (10 * SEC, u(1000, 0, 100), u(1000, 0, 100)),
                (30 * SEC, u(1500, 0, 150), u(2000, 0, 200)),
            ],
            (3000, 300, 0, 0),
            (1500, 150, 0, 0),
            id="total grew less than last",
        ),
        pytest.param(  # a reset: the total goes down, then grows again
            [
                (10 * SEC, u(1000, 0, 100), u(1000, 0, 100)),
                (30 * SEC, u(500, 0, 50), u(500, 0, 50)),
                (50 * SEC, u(1200, 0, 120), u(700, 0, 70)),
            ],
            (2200, 220, 0, 0),
            (1700, 170, 0, 0),
            id="total decreased",
        ),
    ],
)
def test_d8_codex_counts_the_growth_of_the_total_where_ccusage_sums_last(
    tmp_path: Path, rows: list[Any], peer_counts: tuple[int, ...], our_counts: tuple[int, ...]
) -> None:
    peer, ours = both(tmp_path, "codex", lambda logs: rollout(logs, X, rows))
    assert peer == {DAY: peer_counts}
    assert ours == {DAY: our_counts}


def test_d9_identical_codex_events_of_unrelated_sessions_count_twice_here(tmp_path: Path) -> None:
    same = u(1000, 200, 100)

    def build(logs: Path) -> None:
        rollout(logs, X, [(10 * SEC, same, same)])
        rollout(logs, Y, [(10 * SEC, same, same)])

    peer, ours = both(tmp_path, "codex", build)
    assert peer == {DAY: (800, 100, 0, 200)}  # ccusage's event key has no session
    assert ours == {DAY: (1600, 200, 0, 400)}


def test_d10_a_microsecond_codex_timestamp_fails_ccusage_and_counts_here(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    path = rollout(logs, X, [(10 * SEC, u(1000, 200, 100), u(1000, 200, 100))])
    micro = (T0 + 20 * SEC).strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    write_lines(path, [codex_tokens(micro, u(3000, 200, 300), u(2000, 0, 200))])
    with pytest.raises(AssertionError, match="Invalid Codex timestamp"):
        ccusage_tokens("codex", logs, tmp_path)
    ingestor(tmp_path / "data", Codex(), logs).scan()
    assert ledger_tokens(tmp_path / "data", "codex") == {DAY: (2800, 300, 0, 200)}


@pytest.mark.parametrize(
    ("meta", "rows", "peer_counts", "our_counts"),
    [
        pytest.param(  # replays one row at once, works 7 s later: not a burst for ccusage
            {"spawned_by": PARENT},
            [
                (2 * MS, u(1000, 0, 100), u(1000, 0, 100)),
                (7 * SEC, u(3500, 1000, 400), u(2500, 1000, 300)),
            ],
            {DAY: (2500, 400, 0, 1000)},
            {DAY: (1500, 300, 0, 1000)},
            id="subagent replays one row",
        ),
        pytest.param(  # no replay; its own first two turns within a second, 30 s in
            {"forked_from": PARENT},
            [
                (30 * SEC, u(1000, 0, 100), u(1000, 0, 100)),
                (30500 * MS, u(3000, 0, 300), u(2000, 0, 200)),
            ],
            {},
            {DAY: (3000, 300, 0, 0)},
            id="fork's own quick turns",
        ),
    ],
)
def test_d11_a_fork_without_its_parent_skips_rows_of_its_first_second(
    tmp_path: Path,
    meta: dict[str, str],
    rows: list[Any],
    peer_counts: dict[str, Any],
    our_counts: dict[str, Any],
) -> None:
    """Parent absent: ours skips the rows within 1 s of the child's start (chained); ccusage
    skips a child whose first two rows are within 1 s of each other."""
    peer, ours = both(tmp_path, "codex", lambda logs: rollout(logs, X, rows, **meta))
    assert peer == peer_counts
    assert ours == our_counts


@pytest.mark.parametrize("tool", ["claude", "codex"])
def test_d12_a_last_line_without_newline_counts_in_ccusage_and_here_once_it_ends(
    tmp_path: Path, tool: str
) -> None:
    logs, data = tmp_path / "logs", tmp_path / "data"
    if tool == "claude":
        path = claude_file(logs)
        write_lines(path, [claude_assistant(T0, S, "msg_1", "req_1", claude_usage(5, 10))])
        last = claude_assistant(T0 + SEC, S, "msg_2", "req_2", claude_usage(1, 2))
        before, after = (5, 10, 0, 0), (6, 12, 0, 0)
    else:
        path = rollout(logs, X, [(10 * SEC, u(1000, 200, 100), u(1000, 200, 100))])
        last = codex_tokens(T0 + 20 * SEC, u(3000, 200, 300), u(2000, 0, 200))
        before, after = (800, 100, 0, 200), (2800, 300, 0, 200)
    with open(path, "a") as f:
        f.write(compact(last))  # complete, but no newline (yet)
    source = ClaudeCode() if tool == "claude" else Codex()
    ingestor(data, source, logs).scan()
    assert ccusage_tokens(tool, logs, tmp_path) == {DAY: after}
    assert ledger_tokens(data, source.label) == {DAY: before}
    with open(path, "a") as f:
        f.write("\n")
    ingestor(data, source, logs).scan()
    assert ccusage_tokens(tool, logs, tmp_path) == {DAY: after}
    assert ledger_tokens(data, source.label) == {DAY: after}
