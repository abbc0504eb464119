"""The Qwen Code source: the real Qwen Code 0.24.4's chats (`tests/fixtures/qwen-code`, see its
README: a session, a continued prompt, a fork) and records written as Qwen Code writes them
(compact `JSON.stringify` lines, its field order), through the real ingestion into a data
folder, totals read back from the ledger: one record per model call (background calls
included), the assistant twin and fork copies never added, cached input split out, thoughts
counted once, torn, replaced, huge and bad lines, where it looks, privacy.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid as uuids
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.sources.gemini_cli import GeminiCli
from dx_lsp_telemetry.sources.ingest import ScanStats
from dx_lsp_telemetry.sources.qwen_code import QwenCode
from tests.harness import cli_json, date_ago, run_cli
from tests.source_logs import (
    all_file_bytes,
    compact,
    day_start,
    ingestor,
    iso,
    ledger_bytes,
    ledger_models,
    ledger_total,
    write_lines,
)

TOOL = "qwen-code"
FIXTURES = Path(__file__).parent / "fixtures" / "qwen-code"
PARENT_CHAT = FIXTURES / "chats" / "6cc1b9c1-9426-45fa-af27-89a056b13a65.jsonl"
FORK_CHAT = FIXTURES / "chats" / "2fbc188a-c7f3-42ed-8c0c-91202ecea640.jsonl"
SESSION = "3d6f2a1b-7c8e-4f90-a1b2-c3d4e5f60718"
SECRET = "rotate the credentials of Project Nightingale"
CWD = "/home/dev/nightingale-secret"
T0 = day_start(3) + timedelta(hours=14)
KEEP_ALL = {"retentionDays": 3650}  # the real capture's day stays readable for years


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def known_calls() -> list[tuple[int, int, int, int]]:
    """Each call the fake model API answered in the real run, in DX's buckets."""
    rows = [json.loads(line) for line in (FIXTURES / "fake-api.jsonl").read_text().splitlines()]
    return [
        (k["input"], k["output"], k["cache_write"], k["cache_read"])
        for k in (r["known"] for r in rows)
    ]


def add(*counts: tuple[int, int, int, int]) -> tuple[int, ...]:
    return tuple(sum(c[i] for c in counts) for i in range(4))


# -- Qwen Code's records ----------------------------------------------------------------------


class Chat:
    """A session's records, each `parentUuid` the one before, as ChatRecordingService writes."""

    def __init__(self, session: str = SESSION) -> None:
        self.session = session
        self.last: str | None = None

    def base(self, ts: datetime, kind: str, provenance: str) -> dict[str, Any]:
        record = {
            "uuid": str(uuids.uuid4()),
            "parentUuid": self.last,
            "sessionId": self.session,
            "timestamp": iso(ts),
            "type": kind,
            "provenance": provenance,
            "cwd": CWD,
            "version": "0.24.4",
            "gitBranch": "main",
        }
        self.last = record["uuid"]
        return record

    def user(self, ts: datetime, text: str = SECRET) -> dict[str, Any]:
        return {
            **self.base(ts, "user", "real_user"),
            "message": {"role": "user", "parts": [{"text": text}]},
        }

    def api_response(
        self, ts: datetime, usage: dict[str, int], *, model: str = "qwen3-coder-plus", **extra: Any
    ) -> dict[str, Any]:
        event = {
            "event.name": "qwen-code.api_response",
            "event.timestamp": iso(ts),
            "response_id": f"chatcmpl-{uuids.uuid4().hex[:12]}",
            "model": model,
            "status_code": 200,
            "duration_ms": 900,
            **usage,
            "response_text": f"The answer about {SECRET}",
            "prompt_id": f"{self.session}########0",
            "auth_type": "openai",
            **extra,
        }
        return {
            **self.base(ts, "system", "system"),
            "subtype": "ui_telemetry",
            "systemPayload": {"uiEvent": event},
        }

    def assistant(
        self, ts: datetime, metadata: dict[str, int] | None, model: str = "qwen3-coder-plus"
    ) -> dict[str, Any]:
        record = {
            **self.base(ts, "assistant", "assistant_output"),
            "model": model,
            "message": {"role": "model", "parts": [{"text": f"Done: {SECRET}"}]},
        }
        if metadata is not None:
            record["usageMetadata"] = metadata
            record["contextWindowSize"] = 1000000
        return record

    def system(self, ts: datetime, subtype: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {**self.base(ts, "system", "system"), "subtype": subtype, "systemPayload": payload}


def event_usage(
    prompt: int, completion: int, cached: int = 0, reasoning: int = 0
) -> dict[str, int]:
    """An api_response's counts from an OpenAI-compatible provider: the prompt includes the
    cache, the output includes the reasoning, which is repeated as thoughts."""
    return {
        "input_token_count": prompt,
        "output_token_count": completion,
        "cached_content_token_count": cached,
        "thoughts_token_count": reasoning,
        "total_token_count": prompt + completion,
    }


def metadata_of(usage: dict[str, int]) -> dict[str, int]:
    """The same counts as the `assistant` record's usageMetadata."""
    return {
        "promptTokenCount": usage["input_token_count"],
        "candidatesTokenCount": usage["output_token_count"],
        "thoughtsTokenCount": usage["thoughts_token_count"],
        "totalTokenCount": usage["total_token_count"],
        "cachedContentTokenCount": usage["cached_content_token_count"],
    }


def ours(usage: dict[str, int]) -> tuple[int, int, int, int]:
    cached = usage["cached_content_token_count"]
    return (usage["input_token_count"] - cached, usage["output_token_count"], 0, cached)


def turn(chat: Chat, ts: datetime, usage: dict[str, int]) -> list[dict[str, Any]]:
    """A prompt and its answer as 0.24.4 records them: telemetry first, then the assistant."""
    return [
        chat.user(ts),
        chat.api_response(ts + timedelta(seconds=1), usage),
        chat.assistant(ts + timedelta(seconds=1.01), metadata_of(usage)),
    ]


def chat_path(logs: Path, session: str = SESSION, project: str = "-home-dev-nightingale") -> Path:
    return logs / "projects" / project / "chats" / f"{session}.jsonl"


def scan(data: Path, logs: Path, **kwargs: Any) -> ScanStats:
    """One run of a new process (a fresh source object)."""
    return ingestor(data, QwenCode(), logs, settings=KEEP_ALL, **kwargs).scan()


def total(data: Path) -> tuple[int, int, int, int]:
    return ledger_total(data, TOOL).tokens


def copy_real(logs: Path, *chats: Path, project: str = "-tmp-work") -> None:
    for chat in chats:
        target = logs / "projects" / project / "chats" / chat.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chat, target)


# -- the real Qwen Code's files ---------------------------------------------------------------


def test_the_real_chats_count_every_model_call_once_as_the_api_sent_it(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    copy_real(logs, PARENT_CHAT, FORK_CHAT)
    stats = scan(data, logs)
    assert (stats.files, stats.records, stats.problems) == (2, 6, [])
    calls = known_calls()
    assert len(calls) == 6  # three answers, three background memory extractions
    # input without the cache, output with its reasoning (not twice), cache reads
    assert total(data) == add(*calls) == (6015, 315, 0, 1215)
    assert ledger_total(data, TOOL).events == 6
    assert ledger_models(data, TOOL) == ["qwen3-coder-plus"] * 6
    assert scan(data, logs).records == 0
    assert total(data) == (6015, 315, 0, 1215)


def otlp_calls() -> list[str]:
    """Each `qwen-code.api_response` Qwen Code exported over OTLP in the real run, as
    `session.id:prompt_id:response_id:input:output:cached:thoughts`."""
    found = []
    for body in sorted((FIXTURES / "otlp").glob("*-logs.json")):
        for resource in json.loads(body.read_text())["resourceLogs"]:
            for scope in resource["scopeLogs"]:
                for log in scope["logRecords"]:
                    attrs = {
                        a["key"]: next(iter(a["value"].values()), None) for a in log["attributes"]
                    }
                    if attrs.get("event.name") != "qwen-code.api_response":
                        continue
                    names = ["session.id", "prompt_id", "response_id", "input_token_count"]
                    names += ["output_token_count", "cached_content_token_count"]
                    names.append("thoughts_token_count")
                    found.append(":".join(str(attrs[n]) for n in names))
    return found


def test_a_call_has_the_key_its_otlp_export_states_too() -> None:
    """So the OTLP receiver can give the same call the same event id (both channels on)."""
    keys = [r.key for chat in (PARENT_CHAT, FORK_CHAT) for r in QwenCode().read(chat, {}).records]
    assert len(keys) == 6
    assert sorted(keys) == sorted(otlp_calls())


def test_a_repeated_response_id_or_none_keeps_calls_apart(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat = Chat()
    one, two = event_usage(1000, 10, 100), event_usage(1100, 12, 100)
    same = {"response_id": "chatcmpl-7"}  # a provider whose ids repeat
    lines = [chat.api_response(at(0), one, **same), chat.api_response(at(1), two, **same)]
    lines += [chat.api_response(at(2), one, response_id=""), chat.api_response(at(3), one)]
    write_lines(chat_path(logs), lines)
    scan(data, logs)
    assert ledger_total(data, TOOL).events == 4
    assert total(data) == add(ours(one), ours(two), ours(one), ours(one))


def test_the_real_fork_alone_counts_only_its_own_calls(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    copy_real(logs, FORK_CHAT)
    scan(data, logs)
    assert total(data) == add(*known_calls()[4:]) == (2009, 109, 0, 409)
    copy_real(logs, PARENT_CHAT)  # the parent found later: its calls, not the fork's copies
    scan(data, logs)
    assert total(data) == (6015, 315, 0, 1215)


def test_the_real_chats_copied_to_another_project_folder_count_once(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    copy_real(logs, PARENT_CHAT, FORK_CHAT)
    copy_real(logs, PARENT_CHAT, FORK_CHAT, project="-home-dev-moved")
    assert scan(data, logs).files == 4
    assert total(data) == (6015, 315, 0, 1215)
    assert ledger_total(data, TOOL).events == 6


def test_the_real_chat_read_line_by_line_as_it_was_written(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    target = chat_path(logs, "6cc1b9c1-9426-45fa-af27-89a056b13a65", "-tmp-work")
    target.parent.mkdir(parents=True)
    for line in PARENT_CHAT.read_bytes().splitlines(keepends=True):
        with open(target, "ab") as f:
            f.write(line[: len(line) // 2])
        scan(data, logs)
        with open(target, "ab") as f:
            f.write(line[len(line) // 2 :])
        scan(data, logs)
    assert total(data) == add(*known_calls()[:4])
    assert sum(b.count(b"\n") for b in ledger_bytes(data).values()) == 4


# -- which records count ----------------------------------------------------------------------


def test_a_chat_without_api_response_records_counts_its_assistant_usage(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat = Chat()
    one, two = event_usage(5000, 200, 3000, 20), event_usage(6000, 100, 5500)
    write_lines(chat_path(logs), [chat.user(at(0)), chat.assistant(at(1), metadata_of(one))])
    write_lines(chat_path(logs), [chat.user(at(2)), chat.assistant(at(3), metadata_of(two))])
    write_lines(chat_path(logs), [chat.assistant(at(4), None)])  # no usage on it
    scan(data, logs)
    assert total(data) == add(ours(one), ours(two)) == (2500, 300, 0, 8500)
    # the same session continued by a version that records api_response: from then on the
    # assistant record repeats its telemetry twin and never adds
    three = event_usage(7000, 50, 6900)
    write_lines(chat_path(logs), turn(chat, at(10), three))
    scan(data, logs)
    assert total(data) == add(ours(one), ours(two), ours(three))
    assert ledger_total(data, TOOL).events == 3


def test_background_calls_and_a_rewind(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat = Chat()
    main, memory, later = event_usage(900, 40, 100), event_usage(300, 20), event_usage(950, 45, 10)
    lines = turn(chat, at(0), main)
    lines.append(chat.api_response(at(3), memory, subagent_name="managed-auto-memory-extractor"))
    lines.append(chat.system(at(5), "rewind", {"truncatedCount": 3}))  # rewound, yet spent
    lines += turn(chat, at(6), later)
    write_lines(chat_path(logs), lines)
    scan(data, logs)
    assert total(data) == add(ours(main), ours(memory), ours(later))


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (event_usage(1000, 80, 200, 30), (800, 80, 0, 200)),  # OpenAI: reasoning inside output
        # Gemini's API (`--auth-type gemini`): thoughts beside the candidates, in the total
        (
            {
                "input_token_count": 1000,
                "output_token_count": 50,
                "cached_content_token_count": 200,
                "thoughts_token_count": 30,
                "tool_token_count": 5,
                "total_token_count": 1085,
            },
            (805, 80, 0, 200),
        ),
    ],
)
def test_thoughts_count_once_whichever_provider_filled_the_counts(
    tmp_path: Path, usage: dict[str, int], expected: tuple[int, int, int, int]
) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat = Chat()
    write_lines(chat_path(logs), [chat.api_response(at(0), usage)])
    scan(data, logs)
    assert total(data) == expected


def test_identical_calls_of_two_sessions_both_count(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    same = event_usage(100, 10)
    other = "9e8d7c6b-5a49-4382-9716-05f4e3d2c1b0"
    write_lines(chat_path(logs), turn(Chat(), at(0), same))
    write_lines(chat_path(logs, other), turn(Chat(other), at(0), same))
    scan(data, logs)
    assert ledger_total(data, TOOL).events == 2


# -- torn, replaced, huge and bad lines -----------------------------------------------------


def test_a_torn_last_line_waits_for_its_end(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat, usage = Chat(), event_usage(400, 40, 100)
    path = chat_path(logs)
    write_lines(path, [chat.user(at(0))])
    line = compact(chat.api_response(at(1), usage)) + "\n"
    with open(path, "a") as f:
        f.write(line[:-40])
    assert (scan(data, logs).records, total(data)) == (0, (0, 0, 0, 0))
    with open(path, "a") as f:
        f.write(line[-40:])
    assert scan(data, logs).records == 1
    assert total(data) == ours(usage)


def test_a_replaced_or_truncated_chat_is_read_again_and_counts_each_call_once(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat = Chat()
    one, two, three = event_usage(100, 10), event_usage(200, 20), event_usage(300, 30)
    first, second = turn(chat, at(0), one), turn(chat, at(10), two)
    path = chat_path(logs)
    write_lines(path, first + second)
    scan(data, logs)
    replacement = path.with_name("rewritten.tmp")
    third = turn(chat, at(20), three)
    write_lines(replacement, first + second + third)
    os.replace(replacement, path)
    scan(data, logs)
    with open(path, "r+") as f:  # truncated in place, then written again
        f.truncate(0)
    write_lines(path, third)
    scan(data, logs)
    assert total(data) == add(ours(one), ours(two), ours(three))
    assert ledger_total(data, TOOL).events == 3


def test_huge_lines_are_read_and_a_huge_bad_one_is_named(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat, usage = Chat(), event_usage(9000, 900, 8000)
    path = chat_path(logs)
    big = "x" * (24 << 20)  # a 24 MiB tool output
    write_lines(path, [chat.user(at(0), big), chat.api_response(at(1), usage)])
    with open(path, "a") as f:
        f.write('{"uuid":"u","type":"system","systemPayload":"' + "y" * (8 << 20) + "\n")
    write_lines(path, [chat.api_response(at(2), usage)])
    stats = scan(data, logs)
    assert stats.records == 2
    assert stats.problems == [f"{path.name}: skipped 1 unreadable line (line 3: not JSON)"]
    assert total(data) == add(ours(usage), ours(usage))


def test_bad_lines_are_named_with_their_line_and_the_rest_is_read(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    chat, good = Chat(), event_usage(1000, 100, 300)
    path = chat_path(logs)
    write_lines(path, [chat.api_response(at(0), good)])
    with open(path, "a") as f:
        f.write('{"uuid": "torn", "type": "sys\n')  # line 2
        f.write('"a string"\n')  # line 3
    no_uuid = chat.api_response(at(1), good)
    del no_uuid["uuid"]
    write_lines(
        path,
        [
            chat.api_response(at(1), {**good, "input_token_count": "1000"}),  # line 4
            chat.api_response(at(2), {**good, "cached_content_token_count": -1}),  # line 5
            no_uuid,  # line 6
            {**chat.api_response(at(3), good), "timestamp": 1764000000},  # line 7
            # line 8: an assistant record after telemetry is not read, so nothing is wrong
            {**chat.assistant(at(4), None), "usageMetadata": [1, 2]},
            chat.api_response(at(5), good),  # line 9
        ],
    )
    stats = scan(data, logs)
    assert stats.records == 2
    assert len(stats.problems) == 1
    problem = stats.problems[0]
    assert problem.startswith(f"{path.name}: skipped 6 unreadable lines (line 2: not JSON; ")
    assert "line 3: not a JSON object" in problem
    assert "line 4: `input_token_count` is '1000', not a token count" in problem
    assert problem.endswith("; 3 more)")
    assert total(data) == add(ours(good), ours(good))
    write_lines(path, [chat.api_response(at(6), {**good, "total_token_count": True})])
    assert scan(data, logs).problems == [
        f"{path.name}: skipped 1 unreadable line "
        "(line 10: `total_token_count` is True, not a token count)"
    ]


# -- where it looks -------------------------------------------------------------------------


def test_homes(tmp_path: Path) -> None:
    source = QwenCode()
    home = tmp_path / "home"
    assert source.homes("", {"HOME": str(home)}) == [home / ".qwen"]
    runtime, config = tmp_path / "runtime", tmp_path / "config"
    assert source.homes("", {"HOME": str(home), "QWEN_HOME": str(config)}) == [config]
    assert source.homes("", {"HOME": str(home), "QWEN_RUNTIME_DIR": str(runtime)}) == [
        runtime,
        home / ".qwen",  # sessions from before the runtime folder moved
    ]
    assert source.homes("", {"HOME": str(home), "QWEN_RUNTIME_DIR": "~/rt"}) == [
        home / "rt",
        home / ".qwen",
    ]
    settings = home / ".qwen" / "settings.json"
    settings.parent.mkdir(parents=True)
    for value, expected in (
        ("~/qwen-out", [home / "qwen-out", home / ".qwen"]),
        (str(tmp_path / "abs-out"), [tmp_path / "abs-out", home / ".qwen"]),
        ("relative/out", [home / ".qwen"]),  # per project: not knowable here
    ):
        settings.write_text(json.dumps({"advanced": {"runtimeOutputDir": value}}))
        assert source.homes("", {"HOME": str(home)}) == expected, value
    settings.write_text("{not json")
    assert source.homes("", {"HOME": str(home)}) == [home / ".qwen"]
    custom = tmp_path / "custom"
    assert source.homes(str(custom), {"QWEN_RUNTIME_DIR": str(runtime)}) == [custom]
    assert source.homes(str(custom / "projects"), {}) == [custom]


def test_files_and_wants(tmp_path: Path) -> None:
    source = QwenCode()
    logs = tmp_path / ".qwen"
    main = chat_path(logs)
    other = chat_path(logs, "9e8d7c6b-5a49-4382-9716-05f4e3d2c1b0", "-home-dev-other")
    subagent = logs / "projects" / "-home-dev-nightingale" / "subagents" / SESSION / "agent-x.jsonl"
    not_chats = [
        subagent,
        logs / "projects" / "-home-dev-nightingale" / "chats" / "nested" / "x.jsonl",
        logs / "projects" / "-home-dev-nightingale" / "meta.json",
        logs / "usage" / "token-usage-2026-12.jsonl",
        logs / "usage_record.jsonl",
    ]
    for path in (main, other, *not_chats):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert list(source.files([logs])) == [main, other]
    assert source.watch_dirs([logs]) == [logs / "projects"]
    assert source.wants(main) and source.wants(other)
    assert not any(source.wants(p) for p in not_chats)
    gemini_chat = tmp_path / ".gemini" / "tmp" / "nightingale" / "chats" / "session-x.jsonl"
    assert not source.wants(gemini_chat)
    assert not GeminiCli().wants(main)


# -- privacy and the CLI ---------------------------------------------------------------------


def test_nothing_of_the_conversation_reaches_the_data_folder(tmp_path: Path) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    copy_real(logs, PARENT_CHAT, FORK_CHAT, project="-home-dev-nightingale-secret")
    chat = Chat()
    write_lines(chat_path(logs), turn(chat, at(0), event_usage(10, 1)))
    scan(data, logs)
    assert ledger_total(data, TOOL).events == 7
    stored = b"".join(all_file_bytes(data).values()) + "".join(all_file_bytes(data)).encode()
    secrets = [SECRET, "Nightingale", "nightingale", CWD, "Say hello", "Say goodbye", "Fake reply"]
    secrets += ["6cc1b9c1", "2fbc188a", SESSION, chat.last or "?", "chatcmpl", "memory-extractor"]
    secrets += ["dx-real-capture", "########"]
    for secret in secrets:
        assert secret.encode() not in stored, secret


def test_cli_scan_takes_both_names_and_report_shows_the_tokens(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "dot-qwen"
    day = date_ago(2)  # the real files, moved to two days ago (the default retention keeps 90)
    for chat in (PARENT_CHAT, FORK_CHAT):
        target = logs / "projects" / "-tmp-work" / "chats" / chat.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(chat.read_bytes().replace(b"2026-12-02T", f"{day}T".encode()))
    done = run_cli(home, "scan", "--source", "qwenCode", "--path", str(logs))
    assert done.returncode == 0, done.stderr
    assert "qwen-code: 2 files, 6 records" in done.stdout
    again = run_cli(home, "scan", "--source", "qwen-code", "--path", str(logs))
    assert "qwen-code: 2 files, 0 records" in again.stdout
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    got = days[(day, TOOL)]
    assert (got["input_tokens"], got["output_tokens"], got["cache_read_tokens"]) == (
        6015,
        315,
        1215,
    )
    assert got["events"] == 6
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources[TOOL]["name"] == "qwenCode" and sources[TOOL]["records"] == 6


def test_a_crash_before_the_checkpoint_or_a_lost_checkpoint_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    logs, data = tmp_path / "qwen", tmp_path / "data"
    copy_real(logs, PARENT_CHAT)
    scan(data, logs)
    checkpoint = data / "sources" / "qwen-code.json"
    saved = checkpoint.read_bytes()
    copy_real(logs, FORK_CHAT)
    scan(data, logs)
    checkpoint.write_bytes(saved)  # the ledger was written, the checkpoint not: read again
    assert scan(data, logs).records == 2
    checkpoint.unlink()  # or lost altogether
    assert scan(data, logs).records == 6
    assert total(data) == (6015, 315, 0, 1215)
    assert ledger_total(data, TOOL).events == 6
