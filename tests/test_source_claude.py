"""The Claude Code source on transcripts written as Claude Code writes them, through the real
ingestion (`make_ingestor`, or the CLI's `scan`) into a data home, totals read back from the
ledger: every trap of the reference (streaming snapshots, copies in resumed sessions, sidechain
replays, truncation, partial lines, appends, crashes, restarts), where it looks, privacy, spend.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.otlp.ids import claude_request
from dx_lsp_telemetry.sources import tail
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from tests.harness import run_cli
from tests.otlp_harness import ledger_usage
from tests.source_logs import (
    SONNET,
    Day,
    all_file_bytes,
    claude_assistant,
    claude_usage,
    claude_user,
    compact,
    day_start,
    ingestor,
    ledger_bytes,
    ledger_days,
    ledger_models,
    ledger_total,
    write_lines,
)

TOOL = "claude-code"
S1 = "3f2a7c1e-5b4d-4e8f-9a6b-0c1d2e3f4a5b"
S2 = "8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968"
T0 = day_start(3) + timedelta(hours=10)  # a complete day, well inside every window
DAY = T0.date().isoformat()


def transcript(logs: Path, session: str, project: str = "-home-dev-proj") -> Path:
    return logs / "projects" / project / f"{session}.jsonl"


def subagent_file(logs: Path, session: str, name: str, project: str = "-home-dev-proj") -> Path:
    return logs / "projects" / project / session / "subagents" / f"agent-{name}.jsonl"


def scan(data: Path, logs: Path, **kwargs: Any) -> Any:
    """One run of a fresh ingestor (a new process, as far as the source's caches go)."""
    return ingestor(data, ClaudeCode(), logs, **kwargs).scan()


def tokens(data: Path) -> tuple[int, int, int, int]:
    return ledger_total(data, TOOL).tokens


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def response(
    n: int,
    usage: dict[str, Any],
    *,
    session: str = S1,
    request: str | None = "same",
    seconds: float | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Response `n` of a session: message id msg_n, request id req_n."""
    return claude_assistant(
        at(n * 60 if seconds is None else seconds),
        session,
        f"msg_01{n:04d}",
        f"req_01{n:04d}" if request == "same" else request,
        usage,
        **kwargs,
    )


# -- duplicates -------------------------------------------------------------------------------


def test_streaming_snapshots_of_one_response_count_its_largest_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    write_lines(
        path,
        [
            claude_user(at(0), S1, "fix it"),
            response(1, claude_usage(12, 1, 300, 5000), seconds=1),
            response(1, claude_usage(12, 50, 300, 5000), seconds=1.4),
        ],
    )
    scan(data, logs)
    assert tokens(data) == (12, 50, 300, 5000)
    # the stream goes on: the same response grows, a smaller snapshot comes late, another starts
    write_lines(
        path,
        [
            response(1, claude_usage(12, 420, 300, 5000), seconds=1.8),
            response(1, claude_usage(12, 50, 300, 5000), seconds=2.2),
            response(2, claude_usage(3, 7, 0, 6000)),
        ],
    )
    scan(data, logs)
    assert tokens(data) == (15, 427, 300, 11000)
    assert ledger_total(data, TOOL).events == 2


def test_a_response_copied_into_resumed_sessions_counts_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    first = [
        response(1, claude_usage(10, 100, 1000, 0)),
        response(2, claude_usage(20, 200, 0, 2000)),
    ]
    write_lines(transcript(logs, S1), first)
    scan(data, logs)
    # resumed twice: each new session file starts with copies of the earlier responses (their
    # ids, the new session id, timestamps a little later), then goes on; one copy in another
    # project folder
    for session, project, n in ((S2, "-home-dev-proj", 3), ("s3", "-home-dev-other", 4)):
        copies = [
            {**line, "sessionId": session, "timestamp": line["timestamp"][:-4] + "800Z"}
            for line in first
        ]
        own = response(n, claude_usage(n, n * 100, 0, 0), session=session)
        write_lines(transcript(logs, session, project), [*copies, own])
    scan(data, logs)
    assert tokens(data) == (10 + 20 + 3 + 4, 100 + 200 + 300 + 400, 1000, 2000)
    assert ledger_total(data, TOOL).events == 4


SIDE_USAGE = (5, 77, 0, 1200)


def sidechain_lines(session: str = S1) -> list[dict[str, Any]]:
    """A `/btw` side question: replays of the parent's responses 1 and 2 (same message ids, new
    request ids, more cache reads), then its own answer streamed twice."""
    return [
        response(1, claude_usage(10, 100, 0, 91000), request="req_side_1", sidechain=True),
        response(2, claude_usage(20, 200, 0, 92000), request="req_side_2", sidechain=True),
        response(9, claude_usage(5, 30, 0, 1200), request="req_side_9", sidechain=True),
        response(9, claude_usage(*SIDE_USAGE[:3], 1200), request="req_side_9", sidechain=True),
    ]


@pytest.mark.parametrize("when", ["same scan", "parent read before", "parent read before restart"])
def test_sidechain_replays_of_the_sessions_responses_never_count(tmp_path: Path, when: str) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(
        transcript(logs, S1),
        [response(1, claude_usage(10, 100, 0, 1000)), response(2, claude_usage(20, 200, 0, 2000))],
    )
    source = ClaudeCode()
    if when != "same scan":
        ingestor(data, source, logs).scan()
    write_lines(subagent_file(logs, S1, "a1b2"), sidechain_lines())
    if when == "parent read before restart":
        source = ClaudeCode()  # a new process: nothing in memory about the session
    ingestor(data, source, logs).scan()
    assert tokens(data) == (10 + 20 + 5, 100 + 200 + 77, 0, 1000 + 2000 + 1200)
    assert ledger_total(data, TOOL).events == 3


def test_a_subagent_s_request_is_keyed_by_its_request_id_like_otlp_s(tmp_path: Path) -> None:
    """A subagent's own response (its transcript in `subagents/`, `isSidechain`) is one record
    per request, under the event id the OTLP receiver gives the same `request_id`."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(1, claude_usage(10, 100, 0, 1000))])
    own = response(9, claude_usage(5, 77, 0, 1200), request="req_agent_9", sidechain=True)
    write_lines(subagent_file(logs, S1, "a"), [own])
    scan(data, logs)
    assert tokens(data) == (10 + 5, 100 + 77, 0, 1000 + 1200)
    ids = {line["event_id"] for line in ledger_usage(data)}
    assert ids == {claude_request("req_010001"), claude_request("req_agent_9")}


def test_a_subagent_response_read_again_elsewhere_counts_once_across_a_restart(
    tmp_path: Path,
) -> None:
    """A subagent's line copied with its request id into another sidechain file (as a fork
    copies its parent's last response) is one record, the larger wins: also after a restart.
    Another request of the same message id is another request, as it is in OTLP."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(1, claude_usage(10, 100, 0, 1000))])
    side = response(9, claude_usage(5, 77, 0, 1200), request="req_side_a", sidechain=True)
    write_lines(subagent_file(logs, S1, "a"), [side])
    scan(data, logs)
    later = response(9, claude_usage(5, 77, 0, 5000), request="req_side_a", sidechain=True)
    write_lines(subagent_file(logs, S1, "b"), [later])
    scan(data, logs)
    assert tokens(data) == (10 + 5, 100 + 77, 0, 1000 + 5000)
    assert ledger_total(data, TOOL).events == 2
    again = response(9, claude_usage(1, 2, 0, 3), request="req_side_b", sidechain=True)
    write_lines(subagent_file(logs, S1, "b"), [again])
    scan(data, logs)
    assert tokens(data) == (10 + 5 + 1, 100 + 77 + 2, 0, 1000 + 5000 + 3)


def test_requestless_responses_dedupe_per_session_and_idless_lines_count_alone(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(
        transcript(logs, S1),
        [
            # no requestId: one record per (session, message.id), the larger wins
            response(1, claude_usage(5, 10), request=None, seconds=1),
            response(1, claude_usage(5, 25), request=None, seconds=2),
            # no message.id: nothing to match copies on, each line is its own record
            claude_assistant(at(3), S1, None, None, claude_usage(1, 2)),
            claude_assistant(at(3), S1, None, None, claude_usage(1, 2)),
        ],
    )
    # the same requestless message id in another session is another record
    write_lines(transcript(logs, S2), [response(1, claude_usage(5, 10), request=None, session=S2)])
    scan(data, logs)
    expected = (5 + 1 + 1 + 5, 25 + 2 + 2 + 10, 0, 0)
    assert tokens(data) == expected
    scan(data, logs)  # read again by a new process: still once (offsets key id-less lines)
    for path in (logs / "projects").rglob("*.jsonl"):
        path.touch()
    scan(data, logs)
    assert tokens(data) == expected


@pytest.mark.parametrize(
    ("usage", "cache_write"),
    [
        (
            {
                "cache_creation_input_tokens": 500,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 300,
                    "ephemeral_1h_input_tokens": 200,
                },
            },
            500,
        ),
        (
            {
                "cache_creation_input_tokens": 700,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            },
            700,
        ),
        (
            {
                "cache_creation_input_tokens": 1000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 300,
                    "ephemeral_1h_input_tokens": 200,
                },
            },
            1000,
        ),
        (
            {
                "cache_creation_input_tokens": 100,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 300,
                    "ephemeral_1h_input_tokens": 200,
                },
            },
            500,
        ),
        ({"cache_creation_input_tokens": 1000, "cache_creation": {}}, 1000),
        ({"cache_creation_input_tokens": 700}, 700),
        ({"cache_creation_input_tokens": 600, "cache_creation": None}, 600),
        ({"cache_creation": {"ephemeral_1h_input_tokens": 18}}, 18),
        (
            {
                "cache_creation_input_tokens": 40,
                "cache_creation": {"ephemeral_1h_input_tokens": 18},
            },
            40,
        ),
    ],
    ids=[
        "split as the total",
        "zero split (a gateway)",
        "split short of the total",
        "split above the total",
        "empty split",
        "total only",
        "split null",
        "split only",
        "partial split short of the total",
    ],
)
def test_cache_writes_are_the_split_or_the_total_whichever_is_larger(
    tmp_path: Path, usage: dict[str, Any], cache_write: int
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    full = {"input_tokens": 4, "output_tokens": 9, "cache_read_input_tokens": 100, **usage}
    write_lines(transcript(logs, S1), [response(1, full)])
    scan(data, logs)
    assert tokens(data) == (4, 9, cache_write, 100)


# -- files that change under the reader ---------------------------------------------------------


@pytest.mark.parametrize("how", ["shrunk", "replaced", "rewritten in place"])
def test_a_file_shrunk_or_replaced_is_read_again_from_0_without_double_counting(
    tmp_path: Path, how: str
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    r = {n: response(n, claude_usage(n, 10 * n, 0, 100 * n)) for n in range(5)}
    write_lines(path, [r[1], r[2]])
    scan(data, logs)
    assert tokens(data) == (3, 30, 0, 300)
    first_inode = path.stat().st_ino
    if how == "shrunk":
        write_lines(path, [r[1]], mode="w")
        scan(data, logs)
        assert tokens(data) == (3, 30, 0, 300)
        write_lines(path, [r[3]])
        expected = (1, 2, 3)
    elif how == "replaced":  # a new file renamed over the old one
        fresh = path.with_name("tmp-copy")
        write_lines(fresh, [r[1], r[2], r[3]])
        os.replace(fresh, path)
        assert path.stat().st_ino != first_inode
        expected = (1, 2, 3)
    else:  # same inode, longer, other first bytes
        write_lines(path, [r[4], r[1], r[2], r[3]], mode="w")
        assert path.stat().st_ino == first_inode
        expected = (1, 2, 3, 4)
    scan(data, logs)
    n = sum(expected)
    assert tokens(data) == (n, 10 * n, 0, 100 * n)
    assert ledger_total(data, TOOL).events == len(expected)


def test_a_partial_last_line_counts_once_its_newline_arrives(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    second = compact(response(2, claude_usage(2, 20, 0, 200)))
    write_lines(path, [response(1, claude_usage(1, 10, 0, 100))])
    with open(path, "a") as f:
        f.write(second[:40])  # Claude Code is in the middle of writing it
    scan(data, logs)
    assert tokens(data) == (1, 10, 0, 100)
    with open(path, "a") as f:
        f.write(second[40:])  # complete JSON, but no newline yet: still being written
    scan(data, logs)
    assert tokens(data) == (1, 10, 0, 100)
    with open(path, "a") as f:
        f.write("\n")
    scan(data, logs)
    assert tokens(data) == (3, 30, 0, 300)
    scan(data, logs)
    assert tokens(data) == (3, 30, 0, 300)
    assert ledger_total(data, TOOL).events == 2


def test_lines_appended_between_two_ingests_are_read_from_the_checkpoint(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    write_lines(path, [response(1, claude_usage(1, 10, 0, 100))])
    source = ClaudeCode()
    run = ingestor(data, source, logs)
    assert run.scan().records == 1
    write_lines(path, [response(2, claude_usage(2, 20, 0, 200))])
    stats = run.ingest_paths([path])  # a watcher's hint
    assert stats.records == 1  # only the new line was read
    assert tokens(data) == (3, 30, 0, 300)
    state = Checkpoints(data / "sources" / f"{TOOL}.json").state(path)
    assert state["offset"] == path.stat().st_size


def test_a_file_appended_to_while_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code writes while we read: what is complete is counted, the rest next time."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    write_lines(path, [response(n, claude_usage(n, 10 * n, 0, 0)) for n in (1, 2)])
    inode = path.stat().st_ino
    third = compact(response(3, claude_usage(3, 30, 0, 0))) + "\n"
    fourth = compact(response(4, claude_usage(4, 40, 0, 0)))
    real_read = os.read
    calls: list[int] = []

    def read_while_appended(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if os.fstat(fd).st_ino == inode:
            calls.append(len(chunk))
            if len(calls) == 1:  # after the first chunk: a whole line and half of the next
                with open(path, "a") as f:
                    f.write(third + fourth[:25])
        return chunk

    monkeypatch.setattr(tail, "CHUNK", 64)  # several chunks per line
    monkeypatch.setattr(tail.os, "read", read_while_appended)
    scan(data, logs)
    monkeypatch.undo()
    assert len(calls) > 3
    assert tokens(data) == (6, 60, 0, 0)
    with open(path, "a") as f:
        f.write(fourth[25:] + "\n")
    scan(data, logs)
    assert tokens(data) == (10, 100, 0, 0)
    assert ledger_total(data, TOOL).events == 4


def test_a_crash_between_reading_and_checkpointing_counts_nothing_twice(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    checkpoint = data / "sources" / f"{TOOL}.json"
    write_lines(path, [response(1, claude_usage(1, 10, 0, 100))])
    scan(data, logs)
    before = checkpoint.read_bytes()
    write_lines(
        path,
        [
            response(1, claude_usage(1, 15, 0, 100)),  # a later snapshot
            response(2, claude_usage(2, 20, 0, 200)),
        ],
    )
    scan(data, logs)
    counted = ledger_days(data, TOOL)
    assert counted[DAY].tokens == (3, 35, 0, 300)
    # the events reached the ledger, the checkpoint did not: a restart reads them again
    checkpoint.write_bytes(before)
    scan(data, logs)
    assert ledger_days(data, TOOL) == counted
    checkpoint.unlink()  # lost altogether: everything again, still once
    scan(data, logs)
    assert ledger_days(data, TOOL) == counted
    checkpoint.write_text("{not json")
    scan(data, logs)
    assert ledger_days(data, TOOL) == counted


def test_a_crash_while_saving_the_checkpoint_counts_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(n, claude_usage(n, 10, 0, 0)) for n in (1, 2)])

    def crash(self: Checkpoints) -> None:
        raise RuntimeError("killed")

    with monkeypatch.context() as m:
        m.setattr(Checkpoints, "save", crash)
        with pytest.raises(RuntimeError):
            scan(data, logs)
    assert tokens(data) == (3, 20, 0, 0)  # in the ledger, not checkpointed
    assert not (data / "sources" / f"{TOOL}.json").exists()
    scan(data, logs)
    assert tokens(data) == (3, 20, 0, 0)
    assert ledger_total(data, TOOL).events == 2


# -- history, restarts, the CLI ------------------------------------------------------------------


def scan_cli(data: Path, *args: str, **env: str) -> Any:
    done = run_cli(data, "scan", "--source", TOOL, *args, **env)
    assert done.returncode == 0, done.stderr
    return done


def report_days(data: Path, days: int = 14) -> dict[str, dict[str, Any]]:
    done = run_cli(data, "report", "--json", "--days", str(days))
    assert done.returncode == 0, done.stderr
    return {d["date"]: d["totals"] for d in json.loads(done.stdout)["days"] if d["tool"] == TOOL}


def history(logs: Path, days: range) -> dict[str, tuple[int, int, int, int]]:
    """A session per day `days` ago: a streamed response, a second one, and a resumed
    session the next day copying the first; the expected totals per day."""
    expected = {}
    for n in days:
        t = day_start(n) + timedelta(hours=12)
        session = f"5e551011-0000-4000-8000-{n:012d}"
        one = claude_assistant(t, session, f"msg_{n}_1", f"req_{n}_1", claude_usage(n, 1))
        final = claude_assistant(t, session, f"msg_{n}_1", f"req_{n}_1", claude_usage(n, 100))
        two = claude_assistant(
            t + timedelta(minutes=5),
            session,
            f"msg_{n}_2",
            f"req_{n}_2",
            claude_usage(1, 2, 30, 40),
        )
        write_lines(transcript(logs, session, f"-home-dev-p{n % 3}"), [one, final, two])
        if n > 1:
            resumed = f"{session[:-4]}beef"
            write_lines(transcript(logs, resumed), [{**final, "sessionId": resumed}])
        expected[(day_start(n)).date().isoformat()] = (n + 1, 102, 30, 40)
    return expected


def test_months_of_history_count_once_within_retention_and_since_narrows(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    expected = history(logs, range(1, 121))
    oldest = (datetime.now(timezone.utc).date() - timedelta(days=90)).isoformat()
    kept = {day: t for day, t in expected.items() if day >= oldest}
    assert len(kept) == 90
    scan_cli(data, "--path", str(logs))
    assert ledger_tokens(data) == kept
    once = ledger_bytes(data)
    done = scan_cli(data, "--path", str(logs))  # again: nothing new
    assert "0 records read" in done.stdout
    scan(data, logs)  # a restart of the sidecar: nothing new either
    assert ledger_bytes(data) == once
    shown = report_days(data)
    for day, totals in shown.items():
        assert (
            totals["input_tokens"],
            totals["output_tokens"],
            totals["cache_write_tokens"],
            totals["cache_read_tokens"],
        ) == kept[day]
    assert len(shown) == 13  # the report's 14 days, today without usage

    narrow = tmp_path / "narrow"
    since = (datetime.now(timezone.utc).date() - timedelta(days=10)).isoformat()
    scan_cli(narrow, "--path", str(logs), "--since", since)
    assert ledger_tokens(narrow) == {day: t for day, t in expected.items() if day >= since}
    scan_cli(narrow, "--path", str(logs))  # --since left the older history unread, not lost
    assert ledger_tokens(narrow) == kept


def ledger_tokens(data: Path) -> dict[str, tuple[int, int, int, int]]:
    return {day: d.tokens for day, d in ledger_days(data, TOOL).items()}


def test_claude_config_dir_lists_and_projects_folders_are_read_once_each(tmp_path: Path) -> None:
    a, b, data = tmp_path / "a", tmp_path / "b", tmp_path / "data"
    write_lines(transcript(a, S1), [response(1, claude_usage(1, 10, 0, 0))])
    # the same response copied into the other folder, and one of its own
    write_lines(
        transcript(b, S2),
        [
            {**response(1, claude_usage(1, 10, 0, 0)), "sessionId": S2},
            response(2, claude_usage(2, 20, 0, 0), session=S2),
        ],
    )
    env = {"CLAUDE_CONFIG_DIR": f" {a} ,, {b / 'projects'},{a}", "HOME": str(tmp_path / "nohome")}
    done = run_cli(data, "sources", "--json", **env)
    row = next(r for r in json.loads(done.stdout)["sources"] if r["label"] == TOOL)
    assert row["looksIn"] == [str(a), str(b)]
    assert row["files"] == 2
    scan_cli(data, **env)
    assert tokens(data) == (3, 30, 0, 0)
    scan_cli(data, **env)
    assert ledger_total(data, TOOL).events == 2


def test_without_claude_config_dir_both_default_homes_are_read(tmp_path: Path) -> None:
    home, data = tmp_path / "user", tmp_path / "data"
    write_lines(transcript(home / ".claude", S1), [response(1, claude_usage(1, 10, 0, 0))])
    xdg = tmp_path / "xdg"
    write_lines(
        transcript(xdg / "claude", S2), [response(2, claude_usage(2, 20, 0, 0), session=S2)]
    )
    env = {"CLAUDE_CONFIG_DIR": "", "HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    scan_cli(data, **env)
    assert tokens(data) == (3, 30, 0, 0)


def test_the_tool_setting_names_the_dx_tool_of_the_events(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(1, claude_usage(1, 10, 0, 0))])
    data.mkdir()
    (data / "settings.json").write_text(
        json.dumps({"sources": {"claudeCode": {"tool": "claude-team"}}})
    )
    scan_cli(data, "--path", str(logs))
    assert ledger_total(data, "claude-team").tokens == (1, 10, 0, 0)
    assert ledger_total(data, TOOL).events == 0


# -- what is stored, what is reported ----------------------------------------------------------


def test_no_prompt_path_project_or_session_name_is_stored(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude-logs-home", tmp_path / "data"
    project = "-home-dev-zebra-secret-project"
    cwd = "/home/dev/zebra-secret-project"
    prompt = "PROMPT-TEXT-please-refactor-the-zebra"
    answer = "ANSWER-TEXT-zebra-refactored"
    path = transcript(logs, S1, project)
    write_lines(
        path,
        [
            claude_user(at(0), S1, prompt, cwd=cwd),
            response(1, claude_usage(1, 10, 0, 0), cwd=cwd, text=answer),
            response(2, claude_usage(2, 20, 0, 0), cwd=cwd, text=answer, cost_usd=0.01),
        ],
    )
    with open(path, "a") as f:
        f.write('{"message":{"usage":{"input_tokens":-1}},"cwd":"' + cwd + '"}\n')  # unreadable
    write_lines(subagent_file(logs, S1, "feedface", project), sidechain_lines())
    scan_cli(data, "--path", str(logs))
    run_cli(data, "sources", "--json")
    run_cli(data, "report", "--json")
    assert tokens(data) == (8, 107, 0, 1200)
    stored = all_file_bytes(data)
    assert any(name.startswith("sources") for name in stored)
    secrets = [
        prompt,
        answer,
        cwd,
        project,
        "zebra",
        S1,
        "msg_01",
        "req_01",
        "req_side",
        "feedface",
        "agent-",
        "subagents",
        "gitBranch",
        str(logs),
        "claude-logs-home",
    ]
    for name, content in stored.items():
        for secret in secrets:
            assert secret not in name, f"{secret!r} in the file name {name}"
            assert secret.encode() not in content, f"{secret!r} stored in {name}"


def test_unreadable_lines_are_skipped_and_named_in_the_last_error(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    path = transcript(logs, S1)
    write_lines(path, [response(1, claude_usage(1, 10, 0, 0))])
    good_ts = response(2, claude_usage(2, 20, 0, 0))
    bad = [
        {**good_ts, "timestamp": "yesterday"},
        {**good_ts, "message": {**good_ts["message"], "usage": {"input_tokens": -5}}},
        {**good_ts, "message": {**good_ts["message"], "usage": {"input_tokens": "12"}}},
        {k: v for k, v in good_ts.items() if k != "timestamp"},
    ]
    with open(path, "a") as f:
        f.write("".join(compact(line) + "\n" for line in bad))
        f.write('{"message":{"usage":{"input_tokens":3,\n')  # cut JSON
    write_lines(path, [response(3, claude_usage(3, 30, 0, 0))])
    done = scan_cli(data, "--path", str(logs))
    assert "2 records read" in done.stdout
    assert "skipped 5 unreadable lines" in done.stderr
    assert tokens(data) == (4, 40, 0, 0)
    rows = json.loads(run_cli(data, "sources", "--json").stdout)["sources"]
    row = next(r for r in rows if r["label"] == TOOL)
    assert "skipped 5 unreadable lines" in row["lastError"]
    assert row["records"] == 2


# -- spend ---------------------------------------------------------------------------------------


def spend_day(data: Path) -> Day:
    return ledger_days(data, TOOL)[DAY]


def test_spend_is_the_logged_cost_when_there_is_one(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(1, claude_usage(1000, 500), cost_usd=0.0123)])
    scan(data, logs)
    day = spend_day(data)
    assert day.spend_cents == Decimal("1.23")
    assert day.estimated_cents is None


@pytest.mark.parametrize("model", [SONNET, "claude-sonnet-4-5-20250929"])
def test_spend_is_estimated_at_list_prices_without_a_cost(tmp_path: Path, model: str) -> None:
    """1000 in, 500 out, 2000 cache writes, 10000 cache reads at $3 / $15 / $3.75 / $0.30 per
    million tokens (a short request: below any long-context tier) = $0.021."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(
        transcript(logs, S1),
        [
            response(1, claude_usage(1000, 500, 2000, 10000), model=model),
            response(2, claude_usage(7, 7), model="a-model-nobody-prices"),
            response(3, claude_usage(0, 0), model="<synthetic>"),
        ],
    )
    scan(data, logs)
    day = spend_day(data)
    assert float(day.spend_cents) == pytest.approx(2.1, abs=1e-9)
    assert day.estimated_cents == day.spend_cents
    assert ledger_models(data, TOOL) == [model, "a-model-nobody-prices"]


def test_one_hour_cache_writes_are_estimated_at_their_own_price(tmp_path: Path) -> None:
    """Claude Sonnet 4: 5-minute cache writes $3.75, 1-hour ones $6 per million tokens."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    split = {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500}
    write_lines(
        transcript(logs, S1), [response(1, claude_usage(1000, 500, 2000, 10000, split=split))]
    )
    scan(data, logs)
    day = spend_day(data)
    assert day.tokens == (1000, 500, 2000, 10000)
    # 1000 x 3 + 500 x 15 + 1500 x 3.75 + 500 x 6 + 10000 x 0.3 = $0.022125
    assert float(day.spend_cents) == pytest.approx(2.2125, abs=1e-9)
    assert day.estimated_cents == day.spend_cents


def test_a_split_short_of_the_total_prices_the_rest_as_5_minute_writes(tmp_path: Path) -> None:
    """A zero split beside 2000 (Claude Code over a gateway): 2000 5-minute writes; a split
    of 500 1-hour writes beside 2000: those 500 at the 1-hour price, 1500 at the 5-minute one."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    zero = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    hour = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 500}
    write_lines(
        transcript(logs, S1),
        [
            response(1, claude_usage(1000, 500, 2000, 10000, split=zero)),
            response(2, claude_usage(1000, 500, 2000, 10000, split=hour)),
        ],
    )
    scan(data, logs)
    day = spend_day(data)
    assert day.tokens == (2000, 1000, 4000, 20000)
    # (1000 x 3 + 500 x 15 + 2000 x 3.75 + 10000 x 0.3) + (... + 1500 x 3.75 + 500 x 6 + ...)
    assert float(day.spend_cents) == pytest.approx(2.1 + 2.2125, abs=1e-9)
    assert day.estimated_cents == day.spend_cents


def test_spend_estimates_can_be_turned_off(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(
        transcript(logs, S1),
        [
            response(1, claude_usage(1000, 500, 2000, 10000)),
            response(2, claude_usage(1, 1), cost_usd=0.5),
        ],
    )
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"spend": {"estimate": False}}))
    scan_cli(data, "--path", str(logs))
    day = spend_day(data)
    assert day.spend_cents == Decimal(50)
    assert day.estimated_cents is None
    assert report_days(data)[DAY]["spend_cents"] == 50.0


def test_report_json_shows_the_estimated_spend_per_day(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(1, claude_usage(1000, 500, 2000, 10000))])
    scan_cli(data, "--path", str(logs))
    totals = report_days(data)[DAY]
    assert totals["spend_cents"] == 2.1
    assert totals["events"] == 1


def test_a_scan_that_finds_nothing_new_writes_nothing(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript(logs, S1), [response(n, claude_usage(n, 10, 0, 0)) for n in (1, 2)])
    scan(data, logs)
    checkpoint = data / "sources" / f"{TOOL}.json"
    written = checkpoint.stat()
    for _ in range(3):  # the sidecar's periodic scan, minute after minute
        scan(data, logs)
    again = checkpoint.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    write_lines(transcript(logs, S1), [response(3, claude_usage(3, 10, 0, 0))])
    scan(data, logs)
    assert checkpoint.stat().st_ino != written.st_ino  # something new: saved (atomically)
