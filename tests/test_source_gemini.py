"""The Gemini CLI source: the real Gemini CLI 0.61.0's chat file (`tests/fixtures/gemini-cli`,
see its README) and logs written as Gemini CLI writes them (compact `JSON.stringify` lines, its
field order), through the real ingestion into a data folder, totals read back from the ledger:
cached input split out, thoughts as output, copies of a message, resumes, rewinds, the legacy
rewritten `.json`, torn, replaced and huge lines, bad lines named, where it looks, privacy.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.sources.gemini_cli import GeminiCli
from dx_lsp_telemetry.sources.ingest import ScanStats
from tests.harness import cli_json, date_ago, run_cli
from tests.source_logs import (
    all_file_bytes,
    compact,
    day_start,
    ingestor,
    iso,
    ledger_bytes,
    ledger_days,
    ledger_models,
    ledger_total,
    write_lines,
)

TOOL = "gemini-cli"
FIXTURES = Path(__file__).parent / "fixtures" / "gemini-cli"
REAL_CHAT = FIXTURES / "session-2026-12-02T18-45-69c27848.jsonl"
REAL_SESSION = "69c27848-896a-4227-b9e9-bfbd173d958e"
SESSION = "5b1f0c2e-8d3a-4b7e-9f10-2a3b4c5d6e7f"
OTHER = "7c2e1d3f-9e4b-4c8f-8a21-3b4c5d6e7f80"
PROJECT_HASH = "a3f1c9e07b2d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789ab"
SECRET = "refactor the billing module of Project Nightingale"
T0 = day_start(3) + timedelta(hours=9)
KEEP_ALL = {"retentionDays": 3650}  # the real capture's day stays readable for years


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def known_calls() -> list[tuple[int, int, int, int]]:
    """What the fake model API sent in the real run, in DX's buckets (input, output with the
    reasoning, cache write, cache read)."""
    rows = [json.loads(line) for line in (FIXTURES / "fake-api.jsonl").read_text().splitlines()]
    return [
        (k["input"], k["output"], k["cache_write"], k["cache_read"])
        for k in (row["known"] for row in rows)
    ]


# -- Gemini CLI's lines -----------------------------------------------------------------------


def header(session: str, ts: datetime, kind: str = "main") -> dict[str, Any]:
    return {
        "sessionId": session,
        "projectHash": PROJECT_HASH,
        "startTime": iso(ts),
        "lastUpdated": iso(ts),
        "kind": kind,
    }


def user(message_id: str, ts: datetime, text: str = SECRET) -> dict[str, Any]:
    return {"id": message_id, "timestamp": iso(ts), "type": "user", "content": [{"text": text}]}


def tokens(inp: int, out: int, cached: int = 0, thoughts: int = 0, tool: int = 0) -> dict[str, int]:
    """`TokensSummary`: `input` includes `cached`; `output` excludes `thoughts`."""
    return {
        "input": inp,
        "output": out,
        "cached": cached,
        "thoughts": thoughts,
        "tool": tool,
        "total": inp + out + thoughts + tool,
    }


def gemini(
    message_id: str,
    ts: datetime,
    toks: dict[str, Any] | None,
    *,
    model: str = "gemini-2.5-pro",
    text: str = "Here is the plan for Project Nightingale.",
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": message_id,
        "timestamp": iso(ts),
        "type": "gemini",
        "content": text,
        "thoughts": [],
        "tokens": toks,
        "model": model,
    }
    if tool_calls is not None:
        line["toolCalls"] = tool_calls
    return line


def touched(ts: datetime) -> dict[str, Any]:
    return {"$set": {"lastUpdated": iso(ts)}}


def chats(logs: Path, project: str = "nightingale") -> Path:
    return logs / "tmp" / project / "chats"


def chat_path(logs: Path, session: str, project: str = "nightingale") -> Path:
    return chats(logs, project) / f"session-{T0.strftime('%Y-%m-%dT%H-%M')}-{session[:8]}.jsonl"


def ours(toks: dict[str, int]) -> tuple[int, int, int, int]:
    return (
        toks["input"] - toks["cached"] + toks["tool"],
        toks["output"] + toks["thoughts"],
        0,
        toks["cached"],
    )


def add(*counts: tuple[int, int, int, int]) -> tuple[int, ...]:
    return tuple(sum(c[i] for c in counts) for i in range(4))


def scan(data: Path, logs: Path, **kwargs: Any) -> ScanStats:
    """One run of a new process (a fresh source object)."""
    return ingestor(data, GeminiCli(), logs, settings=KEEP_ALL, **kwargs).scan()


def total(data: Path) -> tuple[int, int, int, int]:
    return ledger_total(data, TOOL).tokens


def real_home(logs: Path, project: str = "work") -> Path:
    target = chats(logs, project) / REAL_CHAT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REAL_CHAT, target)
    return target


# -- the real Gemini CLI's file ---------------------------------------------------------------


def test_the_real_chat_file_counts_each_model_call_once_as_the_api_sent_it(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    real_home(logs)
    stats = scan(data, logs)
    assert (stats.files, stats.records, stats.problems) == (1, 2, [])
    calls = known_calls()
    assert len(calls) == 2
    # input without the cache (1200 - 200), output with the thoughts (47 + 3), cache reads
    assert total(data) == add(*calls) == (2001, 101, 0, 401)
    assert ledger_total(data, TOOL).events == 2
    assert ledger_models(data, TOOL) == ["gemini-2.5-flash", "gemini-2.5-flash"]
    assert scan(data, logs).records == 0
    assert total(data) == (2001, 101, 0, 401)


def test_the_real_tool_loop_counts_each_call_once_and_writes_each_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    loop = FIXTURES / "tool-loop"
    chat = next(loop.glob("session-*.jsonl"))
    target = chats(logs, "work") / chat.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(chat, target)
    stats = scan(data, logs)
    assert (stats.records, stats.problems) == (3, [])
    rows = [
        json.loads(line)["known"] for line in (loop / "fake-api.jsonl").read_text().splitlines()
    ]
    known = [(k["input"], k["output"], k["cache_write"], k["cache_read"]) for k in rows]
    assert total(data) == add(*known) == (3003, 153, 0, 603)
    assert sum(b.count(b"\n") for b in ledger_bytes(data).values()) == 3


def test_the_real_session_copied_to_another_project_folder_counts_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    real_home(logs)
    real_home(logs, "copied-project")
    backup = logs / "tmp" / "work" / "chats" / "older" / REAL_CHAT.name
    backup.parent.mkdir()
    shutil.copyfile(REAL_CHAT, backup)
    stats = scan(data, logs)
    assert stats.files == 3
    assert total(data) == (2001, 101, 0, 401)
    assert ledger_total(data, TOOL).events == 2


def test_the_real_session_read_line_by_line_as_it_was_written(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    lines = REAL_CHAT.read_bytes().splitlines(keepends=True)
    target = chats(logs, "work") / REAL_CHAT.name
    target.parent.mkdir(parents=True)
    for line in lines:
        with open(target, "ab") as f:
            f.write(line[: len(line) // 2])  # each line torn once, then finished
        scan(data, logs)
        with open(target, "ab") as f:
            f.write(line[len(line) // 2 :])
        scan(data, logs)
    assert total(data) == (2001, 101, 0, 401)
    assert ledger_total(data, TOOL).events == 2
    ledger_lines = sum(b.count(b"\n") for b in ledger_bytes(data).values())
    assert ledger_lines == 2  # nothing written twice


# -- copies, resumes, rewinds ----------------------------------------------------------------


def test_a_message_rewritten_whole_is_one_record_and_written_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    toks = tokens(5000, 300, cached=4000, thoughts=120, tool=7)
    call = {"id": "call-1", "name": "read_file", "args": {"path": "billing.py"}}
    write_lines(path, [header(SESSION, at(0)), user("u1", at(1)), gemini("g1", at(2), None)])
    scan(data, logs)
    assert total(data) == (0, 0, 0, 0)  # tokens not there yet
    write_lines(path, [gemini("g1", at(2), toks), touched(at(3))])
    scan(data, logs)
    for n in range(3):  # each tool call update appends the whole message again
        write_lines(path, [gemini("g1", at(2), toks, tool_calls=[call] * (n + 1))])
        assert scan(data, logs).records == 0
    assert total(data) == ours(toks) == (1007, 420, 0, 4000)
    assert ledger_total(data, TOOL).events == 1
    assert sum(b.count(b"\n") for b in ledger_bytes(data).values()) == 1


def test_a_rewind_keeps_the_spent_tokens_and_what_follows_counts(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    first, second, third = tokens(900, 40, 100), tokens(1900, 80, 900), tokens(950, 45, 100)
    write_lines(
        path,
        [
            header(SESSION, at(0)),
            user("u1", at(1)),
            gemini("g1", at(2), first),
            user("u2", at(3)),
            gemini("g2", at(4), second),
        ],
    )
    scan(data, logs)
    write_lines(path, [{"$rewindTo": "u2"}, user("u3", at(10)), gemini("g3", at(11), third)])
    scan(data, logs)
    assert total(data) == add(ours(first), ours(second), ours(third))
    assert ledger_total(data, TOOL).events == 3


def test_a_resume_appends_a_second_header_and_a_rebuilt_history_that_counts_nothing(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    toks = tokens(1000, 10, 200)
    write_lines(path, [header(SESSION, at(0)), user("u1", at(1)), gemini("g1", at(2), toks)])
    scan(data, logs)
    # a day later: the history rebuilt, re-stamped; even with tokens it is not the record
    rebuilt = gemini("g1", at(86400), toks)
    write_lines(
        path,
        [
            header(SESSION, at(86400)),
            {"$set": {"messages": [user("u1", at(86400)), rebuilt]}},
            {"$set": {"sessionId": SESSION}},
        ],
    )
    assert scan(data, logs).records == 0
    assert list(ledger_days(data, TOOL)) == [T0.date().isoformat()]  # still the day it was spent
    assert total(data) == ours(toks)


def test_same_message_ids_in_two_sessions_are_two_records(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    toks = tokens(100, 10)
    write_lines(chat_path(logs, SESSION), [header(SESSION, at(0)), gemini("g1", at(1), toks)])
    write_lines(chat_path(logs, OTHER), [header(OTHER, at(0)), gemini("g1", at(1), toks)])
    scan(data, logs)
    assert ledger_total(data, TOOL).events == 2


def test_a_subagent_session_under_its_parent_counts(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    parent, child = tokens(3000, 100, 1000), tokens(800, 60, 0, thoughts=20)
    write_lines(chat_path(logs, SESSION), [header(SESSION, at(0)), gemini("g1", at(1), parent)])
    sub = chats(logs) / SESSION / f"{OTHER}.jsonl"
    write_lines(sub, [header(OTHER, at(2), kind="subagent"), gemini("s1", at(3), child)])
    assert scan(data, logs).files == 2
    assert total(data) == add(ours(parent), ours(child))


# -- the legacy rewritten JSON --------------------------------------------------------------


def legacy(session: str, messages: list[dict[str, Any]]) -> str:
    """`JSON.stringify(conversation, null, 2)`, as versions before the event log wrote it."""
    record = {
        "sessionId": session,
        "projectHash": PROJECT_HASH,
        "startTime": iso(at(0)),
        "lastUpdated": iso(at(60)),
        "messages": messages,
    }
    return json.dumps(record, indent=2)


def test_the_legacy_json_and_its_migrated_jsonl_count_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    one, two, three = tokens(1000, 20, 500), tokens(1500, 30, 900, thoughts=5), tokens(10, 1)
    old = chats(logs) / f"session-{T0.strftime('%Y-%m-%dT%H-%M')}-{SESSION[:8]}.json"
    old.parent.mkdir(parents=True)
    old.write_text(legacy(SESSION, [user("u1", at(1)), gemini("g1", at(2), one)]))
    scan(data, logs)
    turns = [user("u1", at(1)), gemini("g1", at(2), one), user("u2", at(3))]
    old.write_text(legacy(SESSION, [*turns, gemini("g2", at(4), two)]))
    assert scan(data, logs).records == 1
    # resumed by a newer Gemini CLI: everything copied into `<name>.jsonl`, then a new turn
    migrated = [header(SESSION, at(0)), user("u1", at(1)), gemini("g1", at(2), one)]
    migrated += [user("u2", at(3)), gemini("g2", at(4), two), {"$set": {"sessionId": SESSION}}]
    write_lines(old.with_suffix(".jsonl"), [*migrated, gemini("g3", at(100), three)])
    scan(data, logs)
    assert total(data) == add(ours(one), ours(two), ours(three))
    assert ledger_total(data, TOOL).events == 3


def test_a_legacy_json_caught_half_written_is_read_again_later(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    toks = tokens(700, 70, 100)
    path = chats(logs) / "session-2026-01-01T10-00-5b1f0c2e.json"
    path.parent.mkdir(parents=True)
    whole = legacy(SESSION, [user("u1", at(1)), gemini("g1", at(2), toks)])
    path.write_text(whole[: len(whole) // 2])
    first = scan(data, logs)
    assert (first.records, first.problems, len(first.retry)) == (0, [], 1)
    source = GeminiCli()  # the same process sees it unchanged: now it is a problem
    run = ingestor(data, source, logs, settings=KEEP_ALL)
    run.scan()
    again = run.scan()
    assert again.problems and path.name in again.problems[0]
    assert "not valid JSON" in again.problems[0]
    path.write_text(whole)
    assert scan(data, logs).records == 1
    assert total(data) == ours(toks)


# -- torn, replaced, huge and bad lines -----------------------------------------------------


def test_a_torn_last_line_waits_for_its_end(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    toks = tokens(400, 40, 100)
    write_lines(path, [header(SESSION, at(0))])
    line = compact(gemini("g1", at(1), toks)) + "\n"
    with open(path, "a") as f:
        f.write(line[:-30])
    assert (scan(data, logs).records, total(data)) == (0, (0, 0, 0, 0))
    with open(path, "a") as f:
        f.write(line[-30:])
    assert scan(data, logs).records == 1
    assert total(data) == ours(toks)


def test_a_replaced_or_truncated_log_is_read_again_and_counts_each_message_once(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    one, two, three = tokens(100, 10), tokens(200, 20), tokens(300, 30)
    write_lines(path, [header(SESSION, at(0)), gemini("g1", at(1), one), gemini("g2", at(2), two)])
    scan(data, logs)
    # rewritten (e.g. a session cleaned up and written anew): same messages, one more
    replacement = path.with_name("tmp-new")
    write_lines(replacement, [header(SESSION, at(0)), gemini("g1", at(1), one)])
    write_lines(replacement, [gemini("g2", at(2), two), gemini("g3", at(3), three)])
    os.replace(replacement, path)
    scan(data, logs)
    with open(path, "r+") as f:  # truncated in place, then written again
        f.truncate(0)
    write_lines(path, [header(SESSION, at(0)), gemini("g3", at(3), three)])
    scan(data, logs)
    assert total(data) == add(ours(one), ours(two), ours(three))
    assert ledger_total(data, TOOL).events == 3


def test_huge_lines_are_read_and_a_huge_bad_one_is_named(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    toks = tokens(9000, 900, 8000)
    big = "x" * (24 << 20)  # a 24 MiB tool output in a user turn
    write_lines(path, [header(SESSION, at(0)), user("u1", at(1), big)])
    write_lines(path, [gemini("g1", at(2), toks, text=big)])
    with open(path, "a") as f:
        f.write('{"id":"g2","type":"gemini","content":"' + "y" * (8 << 20) + "\n")  # cut short
    write_lines(path, [gemini("g3", at(3), toks)])
    stats = scan(data, logs)
    assert stats.records == 2
    assert stats.problems == [
        f"{path.name}: skipped 1 unreadable line (line 4: not JSON)",
    ]
    assert total(data) == add(ours(toks), ours(toks))


def test_bad_lines_are_named_with_their_line_and_the_rest_is_read(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    good = tokens(1000, 100, 300)
    write_lines(path, [header(SESSION, at(0)), gemini("g1", at(1), good)])
    with open(path, "a") as f:
        f.write("{not json\n")  # line 3
        f.write("[1, 2]\n")  # line 4
        f.write("\n")  # line 5: blank, nothing wrong
    write_lines(
        path,
        [
            gemini("g2", at(2), {**good, "input": "1000"}),  # line 6
            gemini("g3", at(3), {**good, "output": -5}),  # line 7
            gemini("g4", at(4), "lots"),  # type: ignore[arg-type]  # line 8
            {**gemini("g5", at(5), good), "timestamp": "yesterday"},  # line 9
            gemini("g6", at(6), good),  # line 10
        ],
    )
    stats = scan(data, logs)
    assert stats.records == 2
    assert len(stats.problems) == 1
    problem = stats.problems[0]
    assert problem.startswith(f"{path.name}: skipped 6 unreadable lines (line 3: not JSON; ")
    assert "line 4: not a JSON object" in problem
    assert "line 6: `input` is '1000', not a token count" in problem
    assert problem.endswith("; 3 more)")
    assert total(data) == add(ours(good), ours(good))
    write_lines(path, [gemini("g7", at(7), {**good, "thoughts": 1.5})])
    again = scan(data, logs)  # only the new line is read, and named by its number
    assert again.problems == [
        f"{path.name}: skipped 1 unreadable line (line 11: `thoughts` is 1.5, not a token count)"
    ]


# -- where it looks -------------------------------------------------------------------------


def test_homes_files_and_wants(tmp_path: Path) -> None:
    source = GeminiCli()
    home = tmp_path / "home"
    assert source.homes("", {"HOME": str(home)}) == [home / ".gemini"]
    assert source.homes("", {"HOME": str(home), "GEMINI_CLI_HOME": str(tmp_path / "alt")}) == [
        tmp_path / "alt" / ".gemini"
    ]
    custom = tmp_path / "custom-gemini"
    assert source.homes(str(custom), {"GEMINI_CLI_HOME": "/elsewhere"}) == [custom]
    assert source.homes(str(custom / "tmp"), {}) == [custom]

    logs = home / ".gemini"
    main = chat_path(logs, SESSION)
    sub = chats(logs) / SESSION / f"{OTHER}.jsonl"
    old = chats(logs, "older") / "session-2025-06-01T10-00-7c2e1d3f.json"
    for path in (main, sub, old):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    not_chats = [
        logs / "tmp" / "nightingale" / "logs.json",
        logs / "tmp" / "nightingale" / "checkpoint-mytag.json",
        chats(logs) / "notes.json",
        logs / "settings.json",
    ]
    for path in not_chats:
        path.write_text("{}")
    assert list(source.files([logs])) == [sub, main, old]  # sorted, a folder by its name
    assert source.watch_dirs([logs]) == [logs / "tmp"]
    assert all(source.wants(p) for p in (main, sub, old))
    assert not any(source.wants(p) for p in not_chats)


# -- privacy and the CLI ---------------------------------------------------------------------


def test_nothing_of_the_conversation_reaches_the_data_folder(tmp_path: Path) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    real_home(logs, "nightingale-secret-project")
    write_lines(
        chat_path(logs, SESSION, "nightingale-secret-project"),
        [header(SESSION, at(0)), user("u1", at(1)), gemini("g1", at(2), tokens(10, 1))],
    )
    scan(data, logs)
    assert ledger_total(data, TOOL).events == 3
    stored = b"".join(all_file_bytes(data).values()) + "".join(all_file_bytes(data)).encode()
    secrets = [SECRET, "Nightingale", "nightingale", "Say hello.", "Say goodbye.", "Fake reply"]
    secrets += [REAL_SESSION, SESSION, "f1f38445", PROJECT_HASH, "873f79dd", "dx-real-capture"]
    for secret in secrets:
        assert secret.encode() not in stored, secret


def test_cli_scan_takes_both_names_and_report_shows_the_tokens(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "dot-gemini"
    # the real file, moved to two days ago (the default retention keeps 90 days)
    day = date_ago(2)
    target = chats(logs, "work") / REAL_CHAT.name
    target.parent.mkdir(parents=True)
    target.write_bytes(REAL_CHAT.read_bytes().replace(b"2026-12-02T", f"{day}T".encode()))
    done = run_cli(home, "scan", "--source", "geminiCli", "--path", str(logs))
    assert done.returncode == 0, done.stderr
    assert "gemini-cli: 1 file, 2 records" in done.stdout
    again = run_cli(home, "scan", "--source", "gemini-cli", "--path", str(logs))
    assert "gemini-cli: 1 file, 0 records" in again.stdout
    unknown = run_cli(home, "scan", "--source", "gemini", "--path", str(logs))
    assert unknown.returncode != 0 and "gemini-cli" in unknown.stderr
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    got = days[(day, TOOL)]
    assert (got["input_tokens"], got["output_tokens"], got["cache_read_tokens"]) == (2001, 101, 401)
    assert got["events"] == 2
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources[TOOL]["name"] == "geminiCli" and sources[TOOL]["records"] == 2


@pytest.mark.parametrize("thoughts_in_total", [True, False])
def test_thoughts_are_output_once_whether_or_not_candidates_hold_them(
    tmp_path: Path, thoughts_in_total: bool
) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    toks = tokens(1000, 50, 200, thoughts=30)
    if not thoughts_in_total:  # a gateway's count: candidates already include the thoughts
        toks = {**toks, "output": 80, "total": 1080}
    write_lines(chat_path(logs, SESSION), [header(SESSION, at(0)), gemini("g1", at(1), toks)])
    scan(data, logs)
    assert total(data) == (800, 80, 0, 200)


def test_a_crash_before_the_checkpoint_or_a_lost_checkpoint_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "gemini", tmp_path / "data"
    path = chat_path(logs, SESSION)
    one, two = tokens(1000, 100, 300), tokens(2000, 200, 600, thoughts=9)
    write_lines(path, [header(SESSION, at(0)), gemini("g1", at(1), one)])
    scan(data, logs)
    checkpoint = data / "sources" / "gemini-cli.json"
    saved = checkpoint.read_bytes()
    write_lines(path, [gemini("g1", at(1), one), gemini("g2", at(2), two)])
    scan(data, logs)
    expected = add(ours(one), ours(two))
    assert total(data) == expected
    checkpoint.write_bytes(saved)  # the ledger was written, the checkpoint not: read again
    assert scan(data, logs).records == 1
    checkpoint.unlink()  # or lost altogether
    assert scan(data, logs).records == 2
    assert total(data) == expected
    assert ledger_total(data, TOOL).events == 2
