"""One request, counted once, whichever channels see it: Claude Code's transcript and its OTLP
events share the request id (the real tool's transcript and export of one session, in both
orders); the cut-over from the old transcript keys counts nothing twice; for a tool with no
shared key (Codex, Qwen Code) its log source wins while it is on."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.days import format_ts, utc_now
from dx_lsp_telemetry.otlp import ids
from dx_lsp_telemetry.sources.base import HeldIds, SourceRecord
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.claude_keys import KEYS_FILE, key_epoch, legacy_key, side_key
from dx_lsp_telemetry.sources.ingest import event_id
from tests.harness import all_files_text, until_async
from tests.otlp_harness import answer, ledger_usage, post, receiver
from tests.otlp_payloads import (
    claude_api_request,
    claude_logs,
    codex_sse_event,
    free_port,
    logs_request,
)
from tests.otlp_real import exports, known, known_totals, shift_for, transcripts
from tests.real.captured import copy_files
from tests.source_logs import claude_usage, codex_usage, ingestor, ledger_total, write_lines
from tests.test_otlp_tools import today_tokens, totals
from tests.test_source_claude import S1, S2, response, subagent_file
from tests.test_source_claude import transcript as transcript_path
from tests.test_source_codex import rollout

#: the real Claude Code's sessions: two prompts; and one of them run by a subagent
CAPTURES = {
    "claude-code": (
        "-tmp-dx-real-capture-claude-code-work",
        "cbdc9676-7e1b-46c6-a107-18280b77cc35",
    ),
    "claude-code-subagent": (
        "-tmp-dx-real-capture-claude-code-subagent-work",
        "d9c6fb17-4469-4186-b2a3-52a0538887ad",
    ),
}


def claude_source(logs: Path) -> dict[str, Any]:
    return {"sources": {"claudeCode": {"enabled": True, "path": str(logs)}}}


@pytest.mark.parametrize("capture", sorted(CAPTURES))
@pytest.mark.parametrize("first", ["otlp", "transcript"])
async def test_claude_code_seen_through_both_channels_counts_once(
    home: Path, tmp_path: Path, first: str, capture: str
) -> None:
    """The real Claude Code's transcripts and OTLP export of one session; with a subagent, its
    request is in `<session>/subagents/agent-*.jsonl` (`isSidechain`) and OTLP's `request_id`
    is its `requestId` there too."""
    logs = tmp_path / "claude"
    shift = shift_for(capture)
    project, session = CAPTURES[capture]
    folder = logs / "projects" / project
    files = transcripts(capture, shift)
    assert (Path(f"{session}.jsonl") in files) and (len(files) == 2) == ("subagent" in capture)
    expected = (len(known(capture)), *known_totals(capture))

    def write_transcripts() -> None:
        for relative, text in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)

    folder.mkdir(parents=True)  # the folder the sidecar watches, before the files
    if first == "transcript":
        write_transcripts()
    async with receiver(home, **claude_source(logs)) as (client, url):

        async def read(n: int) -> bool:
            lines = [line for line in ledger_usage(home) if line["source"] == "claude-code"]
            return len(lines) >= n

        if first == "transcript":
            await until_async(lambda: read(len(known(capture))), what="the transcripts read")
        for signal, request in exports(capture, shift):
            response_ = await post(url, signal, request)
            assert (response_.status_code, answer(response_)) == (200, {})
        if first == "otlp":
            assert today_tokens(await client.status(), "claude-code") == expected
            write_transcripts()
            await until_async(
                lambda: read(len(known(capture))), what="the transcripts read after the export"
            )
        status = await client.status()
        assert today_tokens(status, "claude-code") == expected
    sources = {line["source"] for line in ledger_usage(home)}
    assert sources == {"claude-code", "otlp:claude-code"}  # both channels did write
    assert totals(home, "claude-code") == expected
    stored = all_files_text(home)
    assert "Say hello." not in stored and session not in stored and "agent-" not in stored


class EarlierClaudeCode(ClaudeCode):
    """This source as the versions before the request key read it: each response under its
    message id and request id, and no cut-over file."""

    def _record(self, path: Path, offset: int, line: dict[str, Any]) -> SourceRecord | None:
        record = super()._record(path, offset, line)
        if record is not None and record.legacy_key is not None:
            record = record._replace(key=record.legacy_key, legacy_key=None)
        return record

    def legacy_ids(self, ledger_dir: Path) -> HeldIds | None:
        return None


def new_response(n: int, ts: datetime, usage: dict[str, Any]) -> dict[str, Any]:
    line = response(n, usage)
    line["timestamp"] = format_ts(ts)
    return line


async def test_the_cut_over_from_message_keys_counts_no_request_twice(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    old = [response(1, claude_usage(10, 100, 1000, 0)), response(2, claude_usage(20, 200, 0, 2000))]
    write_lines(transcript_path(logs, S1), old)
    ingestor(data, EarlierClaudeCode(), logs).scan()  # what users' ledgers hold today
    before = ledger_total(data, "claude-code")
    assert before.events == 2 and not (data / "sources" / KEYS_FILE).exists()

    # the upgrade: a resumed session copies both responses (new session id, timestamps hours
    # later), then answers once more; a whole re-read after a lost checkpoint; a fresh process
    copies = [
        {**line, "sessionId": S2, "timestamp": line["timestamp"][:11] + "23:59:00.000Z"}
        for line in old
    ]
    write_lines(transcript_path(logs, S2), copies)
    source = ClaudeCode()
    upgraded = ingestor(data, source, logs)
    epoch = key_epoch(data / "sources")
    assert epoch.legacy is True
    upgraded.scan()
    assert ledger_total(data, "claude-code").tokens == before.tokens
    third = new_response(3, utc_now(), claude_usage(3, 30, 0, 300))
    write_lines(transcript_path(logs, S2), [third])
    ingestor(data, ClaudeCode(), logs).scan()
    (data / "sources" / "claude-code.json").unlink()  # a lost checkpoint: all read again
    ingestor(data, ClaudeCode(), logs).scan()
    after = ledger_total(data, "claude-code")
    assert (after.events, after.tokens) == (3, (33, 330, 1000, 2300))
    stored_ids = {line["event_id"] for line in ledger_usage(data)}
    old_ids = {event_id(source, legacy_key(f"msg_01000{n}", f"req_01000{n}")) for n in (1, 2)}
    # old requests keep their ids; the new one has the id OTLP gives its request_id
    assert stored_ids == old_ids | {ids.claude_request("req_010003")}
    assert key_epoch(data / "sources") == epoch  # decided once

    # OTLP on for the same data folder: a request from before the cut-over is left to the
    # transcript (OTLP cannot name it the old way), the new one is the transcript's, a request
    # only OTLP saw counts
    before_cut = epoch.since - timedelta(minutes=1)
    port = free_port()
    async with receiver(data, port, **claude_source(logs)) as (client, url):
        batch = claude_logs(
            [
                claude_api_request(before_cut, "req_010001", inp=10, out=100, cache_creation=1000),
                claude_api_request(
                    datetime.fromisoformat(third["timestamp"].replace("Z", "+00:00")),
                    "req_010003",
                    inp=3,
                    out=30,
                    cache_read=300,
                ),
                claude_api_request(utc_now(), "req_only_otlp", inp=7, out=7),
            ]
        )
        result = await post(url, "/v1/logs", batch)
        assert (result.status_code, answer(result)) == (200, {})
        status = await client.status()
        assert sum(d["totals"]["events"] for d in status["days"] if d["tool"] == "claude-code") == 4
    final = ledger_total(data, "claude-code")
    assert (final.events, final.tokens) == (4, (40, 337, 1000, 2300))


async def test_the_cut_over_keeps_a_subagent_s_earlier_ids(tmp_path: Path) -> None:
    """Earlier versions counted a subagent's response once per session and message id; after
    the upgrade a re-read keeps those ids, a new subagent request takes its request id (as its
    OTLP event does), and OTLP leaves the requests from before the cut-over to the transcript."""
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript_path(logs, S1), [response(1, claude_usage(10, 100, 1000, 0))])
    agent = subagent_file(logs, S1, "a1b2")
    old_side = response(7, claude_usage(7, 70, 0, 700), request="req_agent_7", sidechain=True)
    write_lines(agent, [old_side])
    ingestor(data, EarlierClaudeCode(), logs).scan()
    before = ledger_total(data, "claude-code")
    assert before.events == 2

    new_side = new_response(8, utc_now(), claude_usage(8, 80, 0, 800))
    new_side.update(isSidechain=True, requestId="req_agent_8")
    write_lines(agent, [new_side])
    source = ClaudeCode()
    ingestor(data, source, logs).scan()
    (data / "sources" / "claude-code.json").unlink()  # a lost checkpoint: all read again
    ingestor(data, ClaudeCode(), logs).scan()
    after = ledger_total(data, "claude-code")
    assert (after.events, after.tokens) == (3, (25, 250, 1000, 1500))
    stored_ids = {line["event_id"] for line in ledger_usage(data)}
    assert stored_ids == {
        event_id(source, legacy_key("msg_010001", "req_010001")),
        event_id(source, side_key(S1, "msg_010007")),
        ids.claude_request("req_agent_8"),
    }

    since = key_epoch(data / "sources").since
    async with receiver(data, free_port(), **claude_source(logs)) as (client, url):
        sent_at = datetime.fromisoformat(new_side["timestamp"].replace("Z", "+00:00"))
        batch = claude_logs(
            [
                claude_api_request(
                    since - timedelta(minutes=1), "req_agent_7", inp=7, out=70, cache_read=700
                ),
                claude_api_request(sent_at, "req_agent_8", inp=8, out=80, cache_read=800),
            ]
        )
        result = await post(url, "/v1/logs", batch)
        assert (result.status_code, answer(result)) == (200, {})
        await client.status()
    final = ledger_total(data, "claude-code")
    assert (final.events, final.tokens) == (3, (25, 250, 1000, 1500))


def test_a_fresh_data_folder_keys_by_request_and_never_looks_up_old_ids(tmp_path: Path) -> None:
    logs, data = tmp_path / "claude", tmp_path / "data"
    write_lines(transcript_path(logs, S1), [response(1, claude_usage(10, 100, 0, 0))])
    reader = ingestor(data, ClaudeCode(), logs)
    assert reader.reader().legacy is None
    assert key_epoch(data / "sources").legacy is False
    reader.scan()
    assert {line["event_id"] for line in ledger_usage(data)} == {ids.claude_request("req_010001")}
    assert json.loads((data / "sources" / KEYS_FILE).read_text())["legacy"] is False


@pytest.mark.parametrize("log_source_on", [True, False])
async def test_codex_its_log_source_wins_while_on_else_otlp_counts(
    home: Path, tmp_path: Path, log_source_on: bool
) -> None:
    codex_home = tmp_path / "codex"
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    calls = [(1200, 200, 50), (2400, 1200, 70)]
    total = codex_usage(0, 0, 0)
    rows = []
    for n, (inp, cached, out) in enumerate(calls):
        last = codex_usage(inp, cached, out)
        total = {k: total[k] + last[k] for k in total}
        rows.append((start + timedelta(seconds=10 * (n + 1)), dict(total), last))
    rollout(codex_home, "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", start, rows)
    records = [
        codex_sse_event(
            ts,
            inp=last["input_tokens"],
            out=last["output_tokens"],
            cached=last["cached_input_tokens"],
        )
        for ts, _, last in rows
    ]
    sources = {"sources": {"codex": {"enabled": log_source_on, "path": str(codex_home)}}}
    async with receiver(home, **sources) as (client, url):
        if log_source_on:

            async def read() -> bool:
                return today_tokens(await client.status(), "codex") is not None

            await until_async(read, what="the rollout read")
        exported = time.monotonic()
        response_ = await post(url, "/v1/logs", logs_request("codex_exec", records, "codex"))
        assert (response_.status_code, answer(response_)) == (200, {})
        assert time.monotonic() - exported < 2
        status = await client.status()
    expected = (2, 1000 + 1200, 120, 0, 1400)
    if log_source_on:
        assert today_tokens(status, "codex") == expected
        assert today_tokens(status, "codex_exec") is None
        assert {line["source"] for line in ledger_usage(home)} == {"codex"}
    else:
        assert today_tokens(status, "codex_exec") == expected
        assert today_tokens(status, "codex") is None


@pytest.mark.parametrize("log_source_on", [True, False])
async def test_qwen_code_its_log_source_wins_while_on_else_otlp_counts(
    home: Path, tmp_path: Path, log_source_on: bool
) -> None:
    """One real Qwen Code 0.24.4 run's chat and OTLP export (tests/real/captures/qwen-code):
    four calls (two answers, two background memory extractions), each counted once, by the log
    source while it is on, else by the receiver."""
    logs = copy_files("qwen-code", "home/.qwen", tmp_path / "qwen")
    sources = {"qwenCode": {"enabled": log_source_on, "path": str(logs)}}
    expected = (len(known("qwen-code")), *known_totals("qwen-code"))
    # the chat keeps its capture's dates
    async with receiver(home, sources=sources, retentionDays=3650) as (_, url):
        if log_source_on:

            async def read() -> bool:
                return totals(home, "qwen-code") == expected

            await until_async(read, what="the chat read")
        for signal, request in exports("qwen-code"):
            response_ = await post(url, signal, request)
            assert (response_.status_code, answer(response_)) == (200, {})
    assert totals(home, "qwen-code") == expected
    channel = "qwen-code" if log_source_on else "otlp:qwen-code"
    assert {line["source"] for line in ledger_usage(home)} == {channel}
