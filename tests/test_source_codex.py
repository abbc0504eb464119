"""The Codex source on rollouts written as Codex writes them, through the real ingestion
(`make_ingestor`, or the CLI's `scan`) into a data home, totals read back from the ledger:
cumulative totals turned into growth, re-emits, forks and subagents replaying their parent,
archived copies, truncation, partial lines, appends, crashes, restarts, where it looks, privacy,
spend.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.sources import tail
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.codex import Codex
from tests.harness import run_cli
from tests.source_logs import (
    all_file_bytes,
    codex_message,
    codex_meta,
    codex_tokens,
    codex_turn,
    codex_usage,
    compact,
    day_start,
    ingestor,
    ledger_bytes,
    ledger_days,
    ledger_models,
    ledger_total,
    plus,
    rollout_path,
    write_lines,
)

TOOL = "codex"
PARENT = "0199a3c0-1111-7000-8000-00000000000a"
CHILD = "0199a3c0-2222-7000-8000-00000000000b"
OTHER = "0199a3c0-3333-7000-8000-00000000000c"
T0 = day_start(3) + timedelta(hours=10)
DAY = T0.date().isoformat()
MS = timedelta(milliseconds=1)
SEC = timedelta(seconds=1)
u = codex_usage


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scan(data: Path, logs: Path, source: Codex | None = None, **kwargs: Any) -> Any:
    """One run; a fresh source object unless given (a new process, for its caches)."""
    return ingestor(data, source or Codex(), logs, **kwargs).scan()


def tokens(data: Path) -> tuple[int, int, int, int]:
    return ledger_total(data, TOOL).tokens


def add(*counts: tuple[int, int, int, int]) -> tuple[int, ...]:
    return tuple(sum(c) for c in zip(*counts))


def ours(usage: dict[str, int]) -> tuple[int, int, int, int]:
    """A Codex usage in DX's disjoint fields: uncached input, output, cache write, cache read."""
    return (
        usage["input_tokens"] - usage["cached_input_tokens"],
        usage["output_tokens"],
        0,
        usage["cached_input_tokens"],
    )


def rollout(
    logs: Path,
    session: str,
    start: datetime,
    rows: list[tuple[datetime, dict[str, int] | None, dict[str, int] | None]],
    *,
    model: str | None = "gpt-5-codex",
    archived: bool = False,
    path: Path | None = None,
    **meta: Any,
) -> Path:
    """A rollout: session_meta, turn_context, then token_count rows (timestamp, total, last)."""
    lines = [codex_meta(start, session, **meta)]
    if model:
        lines.append(codex_turn(start + 50 * MS, model))
    lines += [codex_tokens(ts, total, last) for ts, total, last in rows]
    target = path or rollout_path(logs, start, session, archived=archived)
    write_lines(target, lines)
    return target


# the parent's history: three turns
P1 = u(10000, 4000, 500, 100)
P2 = plus(P1, u(12000, 9000, 700, 300))
P3 = plus(P2, u(15000, 11000, 900, 0))
PARENT_ROWS = [(at(10), P1, P1), (at(40), P2, u(12000, 9000, 700, 300)), (at(90), P3, None)]
OWN = u(3000, 1000, 250, 50)  # the child's own turn


def parent(logs: Path, **kwargs: Any) -> Path:
    return rollout(logs, PARENT, T0, PARENT_ROWS, **kwargs)


# -- the cumulative total --------------------------------------------------------------------


def test_token_counts_count_the_growth_of_the_cumulative_total_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    turn2 = u(2000, 1500, 300, 120)
    t1, t2 = u(1000, 400, 100, 50), plus(u(1000, 400, 100, 50), turn2)
    path = rollout(logs, PARENT, T0, [])
    write_lines(
        path,
        [
            codex_tokens(at(9), None, None, null_info=True),  # a rate-limit refresh: no usage
            codex_tokens(at(10), t1, t1),
            codex_tokens(at(12), t1, u(7, 7, 7, 7)),  # unchanged total, another `last`
        ],
    )
    scan(data, logs)
    assert tokens(data) == ours(t1)
    write_lines(
        path,
        [
            codex_tokens(at(20), None, None, null_info=True),
            codex_tokens(at(30), t2, turn2),
            codex_tokens(at(31), t2, turn2),  # re-emitted
            codex_tokens(at(45), t2, turn2),
        ],
    )
    scan(data, logs)
    # input is split into uncached input and cache reads; reasoning is inside output already
    assert tokens(data) == (600 + 500, 100 + 300, 0, 400 + 1500)
    assert ledger_total(data, TOOL).events == 2


def test_the_model_comes_from_the_latest_turn_context_across_restarts(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    t1, t2, t3 = u(100, 0, 10), u(300, 0, 30), u(600, 0, 60)
    path = rollout(logs, PARENT, T0, [(at(5), t1, t1)], model=None)  # before any turn_context
    write_lines(path, [codex_turn(at(6), "gpt-5-codex"), codex_tokens(at(10), t2, None)])
    scan(data, logs)
    write_lines(path, [codex_tokens(at(20), t3, None)])  # read by the next process
    scan(data, logs)
    write_lines(path, [codex_turn(at(25), "gpt-5.1-codex"), codex_tokens(at(30), plus(t3, t1), t1)])
    scan(data, logs)
    assert ledger_models(data, TOOL) == ["gpt-5", "gpt-5-codex", "gpt-5-codex", "gpt-5.1-codex"]
    assert tokens(data) == (700, 70, 0, 0)


def test_identical_events_of_unrelated_sessions_both_count(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    same = u(1000, 200, 100)
    rollout(logs, PARENT, T0, [(at(10), same, same)])
    rollout(logs, OTHER, T0, [(at(10), same, same)])
    scan(data, logs)
    assert tokens(data) == (1600, 200, 0, 400)


# -- forks and subagents -----------------------------------------------------------------------


def child_rows(start: datetime, replay: list[tuple[datetime, dict[str, int]]]) -> list[Any]:
    rows: list[Any] = [(ts, total, total) for ts, total in replay]
    base = replay[-1][1] if replay else u(0, 0, 0)
    rows.append((start + 20 * SEC, plus(base, OWN), OWN))
    return rows


FORK_START = at(300)
BURST = [(FORK_START + (2 + i) * MS, total) for i, total in enumerate((P1, P2, P3))]


@pytest.mark.parametrize(
    ("case", "meta", "replay", "parent_present"),
    [
        ("fork, replay re-stamped as a burst", "forked_from", BURST, True),
        (
            "fork, replay with the parent's own timestamps",
            "forked_from",
            [(at(10), P1), (at(40), P2), (at(90), P3)],
            True,
        ),
        ("subagent, replays the first turn", "spawned_by", [(FORK_START + 2 * MS, P1)], True),
        ("fork, parent absent, burst replay", "forked_from", BURST, False),
        ("fork, parent absent, no replay", "forked_from", [], False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_fork_or_subagent_counts_only_its_own_turns(
    tmp_path: Path, case: str, meta: str, replay: Any, parent_present: bool
) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    if parent_present:
        parent(logs)
    rollout(logs, CHILD, FORK_START, child_rows(FORK_START, replay), **{meta: PARENT})
    scan(data, logs)
    own = ours(OWN)
    expected = add(ours(P3), own) if parent_present else own
    assert tokens(data) == expected


@pytest.mark.parametrize("parent_where", ["archived", "named after the child"])
def test_a_fork_read_before_its_parent_still_skips_the_replay(
    tmp_path: Path, parent_where: str
) -> None:
    """The files are read in path order: the parent's rows must be known before the child is."""
    logs, data = tmp_path / "codex", tmp_path / "data"
    if parent_where == "archived":
        parent_path = parent(logs, archived=True)  # archived_sessions/ is read after sessions/
    else:
        parent_path = parent(logs, path=logs / "sessions" / "zz" / "rollout-parent.jsonl")
    replay = [(at(10), P1), (at(40), P2), (at(90), P3)]  # the parent's own timestamps
    child_path = rollout(
        logs,
        CHILD,
        FORK_START,
        child_rows(FORK_START, replay),
        forked_from=PARENT,
        path=logs / "sessions" / "aa" / "rollout-child.jsonl",
    )
    if parent_where != "archived":
        assert str(child_path) < str(parent_path)
    scan(data, logs)
    assert tokens(data) == add(ours(P3), ours(OWN))


@pytest.mark.parametrize("restart", [False, True])
def test_a_fork_appearing_after_its_parent_was_read(tmp_path: Path, restart: bool) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    parent(logs)
    source = Codex()
    scan(data, logs, source)
    child = rollout(
        logs, CHILD, FORK_START, [(ts, t, t) for ts, t in BURST[:2]], forked_from=PARENT
    )
    scan(data, logs, Codex() if restart else source)  # half of the replay written so far
    write_lines(child, [codex_tokens(BURST[2][0], P3, P3)])
    write_lines(child, [codex_tokens(FORK_START + 20 * SEC, plus(P3, OWN), OWN)])
    scan(data, logs, Codex() if restart else source)
    assert tokens(data) == add(ours(P3), ours(OWN))


@pytest.mark.parametrize("written", [0, 60], ids=["empty", "half a line"])
def test_a_fork_first_seen_before_its_first_line_was_complete(tmp_path: Path, written: int) -> None:
    """Codex has created the rollout but not finished its `session_meta` line: the fork is
    recognised once it has."""
    logs, data = tmp_path / "codex", tmp_path / "data"
    parent(logs)
    source = Codex()
    scan(data, logs, source)
    path = rollout_path(logs, FORK_START, CHILD)
    meta = compact(codex_meta(FORK_START, CHILD, forked_from=PARENT)) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(meta[:written])
    scan(data, logs, source)
    rows = [codex_turn(FORK_START + MS, "gpt-5-codex")]
    rows += [codex_tokens(ts, total, last) for ts, total, last in child_rows(FORK_START, BURST)]
    with open(path, "a") as f:
        f.write(meta[written:] + "".join(compact(row) + "\n" for row in rows))
    scan(data, logs, source)
    assert tokens(data) == add(ours(P3), ours(OWN))


# -- archived copies -----------------------------------------------------------------------------


def test_archived_copies_and_moves_count_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    active = parent(logs)
    rollout(logs, CHILD, FORK_START, child_rows(FORK_START, BURST), forked_from=PARENT)
    copy = logs / "archived_sessions" / active.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(active.read_bytes())
    scan(data, logs)
    expected = add(ours(P3), ours(OWN))
    assert tokens(data) == expected
    once = ledger_bytes(data)
    copy.unlink()
    os.replace(active, copy)  # `codex archive` moves the rollout
    scan(data, logs)
    assert tokens(data) == expected
    assert ledger_total(data, TOOL).events == 4
    assert set(ledger_bytes(data)) == set(once)


# -- files that change under the reader ----------------------------------------------------------

T1, T2, T3 = u(1000, 200, 100), u(2500, 1200, 250), u(4500, 2700, 300)


@pytest.mark.parametrize("how", ["shrunk", "replaced"])
def test_a_rollout_shrunk_or_replaced_is_read_again_without_double_counting(
    tmp_path: Path, how: str
) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    path = rollout(logs, PARENT, T0, [(at(10), T1, T1), (at(20), T2, None)])
    scan(data, logs)
    assert tokens(data) == ours(T2)
    rows = path.read_text().splitlines(keepends=True)
    if how == "shrunk":
        path.write_text("".join(rows[:3]))  # meta, turn, first row
        scan(data, logs)
        assert tokens(data) == ours(T2)
        path.write_text("".join(rows) + compact(codex_tokens(at(30), T3, None)) + "\n")
    else:
        fresh = path.with_name("tmp")
        fresh.write_text("".join(rows) + compact(codex_tokens(at(30), T3, None)) + "\n")
        os.replace(fresh, path)
    scan(data, logs)
    assert tokens(data) == ours(T3)
    assert ledger_total(data, TOOL).events == 3


def test_a_partial_last_row_counts_once_its_newline_arrives(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    path = rollout(logs, PARENT, T0, [(at(10), T1, T1)])
    second = compact(codex_tokens(at(20), T2, None))
    with open(path, "a") as f:
        f.write(second[:50])
    scan(data, logs)
    assert tokens(data) == ours(T1)
    with open(path, "a") as f:
        f.write(second[50:])
    scan(data, logs)
    assert tokens(data) == ours(T1)
    with open(path, "a") as f:
        f.write("\n")
    scan(data, logs)
    scan(data, logs)
    assert tokens(data) == ours(T2)
    assert ledger_total(data, TOOL).events == 2


def test_rows_appended_between_and_during_ingests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    path = rollout(logs, PARENT, T0, [(at(10), T1, T1)])
    source = Codex()
    run = ingestor(data, source, logs)
    run.scan()
    write_lines(path, [codex_tokens(at(20), T2, None)])
    assert run.ingest_paths([path]).records == 1  # from the checkpoint: the new row only
    assert tokens(data) == ours(T2)
    inode = path.stat().st_ino
    real_read = os.read
    third = compact(codex_tokens(at(30), T3, None)) + "\n"
    fourth = compact(codex_tokens(at(40), plus(T3, T1), T1))
    reads: list[int] = []

    def read_while_appended(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if os.fstat(fd).st_ino == inode:
            reads.append(len(chunk))
            if len(reads) == 1:
                with open(path, "a") as f:
                    f.write(third + fourth[:30])
        return chunk

    write_lines(path, [codex_tokens(at(25), T2, u(1, 1, 1))])  # a re-emit, to start the read
    monkeypatch.setattr(tail, "CHUNK", 64)
    monkeypatch.setattr(tail.os, "read", read_while_appended)
    run.ingest_paths([path])
    monkeypatch.undo()
    assert len(reads) > 2
    assert tokens(data) == ours(T3)
    with open(path, "a") as f:
        f.write(fourth[30:] + "\n")
    scan(data, logs)
    assert tokens(data) == ours(plus(T3, T1))
    assert ledger_total(data, TOOL).events == 4


def test_a_crash_between_reading_and_checkpointing_counts_nothing_twice(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    checkpoint = data / "sources" / f"{TOOL}.json"
    parent(logs)
    path = rollout(logs, OTHER, T0, [(at(10), T1, T1)])
    scan(data, logs)
    before = checkpoint.read_bytes()
    rollout(logs, CHILD, FORK_START, child_rows(FORK_START, BURST), forked_from=PARENT)
    write_lines(path, [codex_tokens(at(20), T2, None), codex_tokens(at(30), T3, None)])
    scan(data, logs)
    counted = ledger_days(data, TOOL)
    assert counted[DAY].tokens == add(ours(P3), ours(OWN), ours(T3))
    checkpoint.write_bytes(before)  # the ledger has the events, the checkpoint does not
    scan(data, logs)
    assert ledger_days(data, TOOL) == counted
    checkpoint.unlink()
    scan(data, logs)
    assert ledger_days(data, TOOL) == counted


def test_a_crash_while_saving_the_checkpoint_counts_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    rollout(logs, OTHER, T0, [(at(10), T1, T1), (at(20), T2, None)])

    def crash(self: Checkpoints) -> None:
        raise RuntimeError("killed")

    with monkeypatch.context() as m:
        m.setattr(Checkpoints, "save", crash)
        with pytest.raises(RuntimeError):
            scan(data, logs)
    assert tokens(data) == ours(T2)
    scan(data, logs)
    assert tokens(data) == ours(T2)
    assert ledger_total(data, TOOL).events == 2


# -- history, where it looks, the CLI ------------------------------------------------------------


def scan_cli(data: Path, *args: str, **env: str) -> Any:
    done = run_cli(data, "scan", "--source", TOOL, *args, **env)
    assert done.returncode == 0, done.stderr
    return done


def ledger_tokens(data: Path) -> dict[str, tuple[int, int, int, int]]:
    return {day: d.tokens for day, d in ledger_days(data, TOOL).items()}


def test_months_of_history_count_once_within_retention_and_since_narrows(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    expected = {}
    for n in range(1, 121):
        start = day_start(n) + timedelta(hours=12)
        session = f"0199a3c0-4444-7000-8000-{n:012d}"
        one, two = u(n * 10, n, 5), u(100, 50, 7, 3)
        rows = [
            (start + 5 * SEC, one, one),
            (start + 6 * SEC, one, one),
            (start + 60 * SEC, plus(one, two), two),
        ]
        path = rollout(logs, session, start, rows)
        if n % 7 == 0:  # some archived too
            copy = logs / "archived_sessions" / path.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())
        expected[start.date().isoformat()] = ours(plus(one, two))
    oldest = (datetime.now(timezone.utc).date() - timedelta(days=90)).isoformat()
    kept = {day: t for day, t in expected.items() if day >= oldest}
    scan_cli(data, "--path", str(logs))
    assert ledger_tokens(data) == kept
    once = ledger_bytes(data)
    assert "0 records read" in scan_cli(data, "--path", str(logs)).stdout
    scan(data, logs)  # a restart: nothing new
    assert ledger_bytes(data) == once

    narrow = tmp_path / "narrow"
    since = (datetime.now(timezone.utc).date() - timedelta(days=30)).isoformat()
    scan_cli(narrow, "--path", str(logs), "--since", since)
    assert ledger_tokens(narrow) == {day: t for day, t in expected.items() if day >= since}


def test_codex_home_lists_and_the_default_home_are_read(tmp_path: Path) -> None:
    a, b, data = tmp_path / "a", tmp_path / "b", tmp_path / "data"
    path = rollout(a, PARENT, T0, [(at(10), T1, T1)])
    archived = b / "archived_sessions" / path.name  # the same rollout, archived in the other
    archived.parent.mkdir(parents=True)
    archived.write_bytes(path.read_bytes())
    rollout(b, OTHER, T0, [(at(10), T2, T2)])
    env = {"CODEX_HOME": f"{a}, ,{b}", "HOME": str(tmp_path / "nohome")}
    rows = json.loads(run_cli(data, "sources", "--json", **env).stdout)["sources"]
    row = next(r for r in rows if r["label"] == TOOL)
    assert row["looksIn"] == [str(a), str(b)]
    assert row["files"] == 3
    scan_cli(data, **env)
    assert tokens(data) == add(ours(T1), ours(T2))

    home, default = tmp_path / "user", tmp_path / "default-data"
    rollout(home / ".codex", PARENT, T0, [(at(10), T1, T1)])
    scan_cli(default, CODEX_HOME="", HOME=str(home))
    assert tokens(default) == ours(T1)


def test_no_prompt_path_project_or_session_name_is_stored(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex-logs-home", tmp_path / "data"
    cwd = "/home/dev/zebra-secret-project"
    prompt = "PROMPT-TEXT-please-refactor-the-zebra"
    path = rollout(logs, PARENT, T0, [(at(10), T1, T1)], cwd=cwd)
    write_lines(
        path,
        [
            codex_message(at(11), "user", prompt),
            codex_message(at(12), "assistant", "ANSWER-TEXT-zebra"),
            codex_tokens(at(20), T2, None),
        ],
    )
    with open(path, "a") as f:
        f.write('{"type":"event_msg","payload":{"type":"token_count","info":{"cwd":"' + cwd + '"\n')
    replay = [(FORK_START + 2 * MS, T1), (FORK_START + 3 * MS, T2)]
    rollout(logs, CHILD, FORK_START, child_rows(FORK_START, replay), forked_from=PARENT, cwd=cwd)
    scan_cli(data, "--path", str(logs))
    run_cli(data, "sources", "--json")
    run_cli(data, "report", "--json")
    assert tokens(data) == add(ours(T2), ours(OWN))
    secrets = [prompt, "ANSWER-TEXT", cwd, "zebra", PARENT, CHILD, "rollout-", str(logs)]
    secrets.append("codex-logs-home")
    for name, content in all_file_bytes(data).items():
        for secret in secrets:
            assert secret not in name, f"{secret!r} in the file name {name}"
            assert secret.encode() not in content, f"{secret!r} stored in {name}"


def test_unreadable_rows_are_skipped_and_named_in_the_last_error(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    path = rollout(logs, PARENT, T0, [(at(10), T1, T1)])
    row = codex_tokens(at(20), T2, None)
    bad = [
        {**row, "timestamp": "2026-13-45"},
        {**row, "payload": {**row["payload"], "info": {"total_token_usage": {"input_tokens": -1}}}},
        {k: v for k, v in row.items() if k != "timestamp"},
    ]
    with open(path, "a") as f:
        f.write("".join(compact(line) + "\n" for line in bad))
        f.write('{"type":"event_msg","payload":{"type":"token_count","info":{\n')
    write_lines(path, [codex_tokens(at(30), T3, None)])
    done = scan_cli(data, "--path", str(logs))
    assert "skipped 4 unreadable lines" in done.stderr
    assert tokens(data) == ours(T3)
    rows = json.loads(run_cli(data, "sources", "--json").stdout)["sources"]
    entry = next(r for r in rows if r["label"] == TOOL)
    assert "skipped 4 unreadable lines" in entry["lastError"]
    assert entry["records"] == 2


# -- spend ---------------------------------------------------------------------------------------


def test_spend_is_estimated_at_list_prices(tmp_path: Path) -> None:
    """gpt-5: $1.25 per million uncached input, $0.125 cached, $10 output (reasoning inside):
    600 + 400 cached + 100 out = $0.0018."""
    logs, data = tmp_path / "codex", tmp_path / "data"
    usage = u(1000, 400, 100, 40)
    rollout(logs, PARENT, T0, [(at(10), usage, usage)], model="gpt-5")
    scan(data, logs)
    day = ledger_days(data, TOOL)[DAY]
    assert float(day.spend_cents) == pytest.approx(0.18, abs=1e-9)
    assert day.estimated_cents == day.spend_cents


def test_spend_estimates_can_be_turned_off(tmp_path: Path) -> None:
    logs, data = tmp_path / "codex", tmp_path / "data"
    usage = u(1000, 400, 100, 40)
    rollout(logs, PARENT, T0, [(at(10), usage, usage)], model="gpt-5")
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"spend": {"estimate": False}}))
    scan_cli(data, "--path", str(logs))
    day = ledger_days(data, TOOL)[DAY]
    assert day.tokens == ours(usage)
    assert day.spend_cents == Decimal(0)
    assert day.estimated_cents is None
