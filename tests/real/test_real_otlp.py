"""Real tools, the OTLP channel: each real CLI exports its own OTLP (http/json) to a real
sidecar's loopback receiver (`otlp.enabled`, `otlp.port`) while it runs prompts offline against
the fake model API. The ledger holds exactly the fake's known usage, once, within 2 s of each
export; batches sent again add nothing; with the tool's log source on as well, each request
still counts once, whichever channel brings it first."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.harness import Sidecar, run_cli, until
from tests.otlp_harness import ledger_usage
from tests.real.otlp_capture import post
from tests.real.protocols.anthropic import SUBAGENT_PROMPT
from tests.real.real_session import (
    RealRun,
    need_receiver,
    need_source,
    real_run,
    today_sum,
    tokens_of,
    until_today_is,
)
from tests.real.tools import ClaudeCode, Codex, CopilotCli, GeminiCli, QwenCode, Tool

#: each tool that exports, its `service.name` (the DX tool name by default), and the branch
#: its log source comes from until it is merged
TOOLS = [
    pytest.param(ClaudeCode, "claude-code", "main", id="claude-code"),
    pytest.param(GeminiCli, "gemini-cli", "srcB", id="gemini-cli"),
    pytest.param(Codex, "codex_exec", "main", id="codex"),
    pytest.param(CopilotCli, "github-copilot", "srcA", id="copilot-cli"),
    pytest.param(QwenCode, "qwen-code", "main", id="qwen-code"),
]
PROMPTS = ("Say hello.", "Say goodbye.")
EXPORT_TO_LEDGER = 2.0  # seconds from the tool's exit (its exporters flush as it exits)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def receiver_up(run: RealRun) -> None:
    assert run.otlp_port is not None
    port = run.otlp_port
    await until(lambda: listening(port), timeout=10, what=f"the receiver on port {port}")


def calls(run: RealRun) -> int:
    """The model calls (usage events) of the run's prompts."""
    return len(PROMPTS) * run.tool.calls_per_prompt


async def receiver_ignored(client: Sidecar, run: RealRun) -> None:
    """The tool's exports reached the receiver and were acknowledged, and nothing of them was
    recorded (its log source, on, is the one that counts)."""
    assert run.relay is not None
    relay = run.relay
    await until(lambda: relay.exports, timeout=10, what="the tool's exports")
    assert all(e.status == 200 for e in relay.exports), [e.status for e in relay.exports]
    # the watcher may be reading the tool's logs meanwhile (its folders are watched from when
    # they appear): never more than once, and nothing of it from the receiver
    today = today_sum(await client.status())
    once = {**run.expected(), "events": calls(run)}
    assert all(today[k] <= once[k] for k in once), f"counted twice: {today}"
    assert set(channels(run.data)) <= {run.label()}, "the receiver recorded the tool"


@pytest.mark.real_tools
@pytest.mark.parametrize(("cls", "service", "branch"), TOOLS)
async def test_a_real_tool_s_otlp_lands_exactly_once_within_2_s_of_its_export(
    cls: type[Tool], service: str, branch: str, tmp_path: Path
) -> None:
    need_receiver()
    async with real_run(cls, tmp_path, otlp=True) as run:
        async with run.sidecar(sources=False, otlp=True) as client:
            await receiver_up(run)
            for n, text in enumerate(PROMPTS, 1):
                await run.prompt(text)
                status = await until_today_is(
                    client, run.expected(), EXPORT_TO_LEDGER, f"prompt {n}'s export in status"
                )
        assert len(run.api.calls) == calls(run)
        assert set(status["today"]["tools"]) == {service}, "the DX tool is the service's name"
        assert today_sum(status) == {**run.expected(), "events": calls(run)}
        report = run.cli("report", "--json", "--days", "1")
        (day,) = [d for d in report["days"] if d["tool"] == service]
        assert tokens_of(day["totals"]) == run.expected()
        assert day["totals"]["events"] == calls(run)


@pytest.mark.real_tools
@pytest.mark.parametrize(("cls", "service", "branch"), TOOLS)
async def test_a_real_tool_s_otlp_batches_sent_again_add_nothing(
    cls: type[Tool], service: str, branch: str, tmp_path: Path
) -> None:
    need_receiver()
    async with real_run(cls, tmp_path, otlp=True, relay=True) as run:
        assert run.relay is not None and run.otlp_url is not None
        async with run.sidecar(sources=False, otlp=True) as client:
            await receiver_up(run)
            for text in PROMPTS:
                await run.prompt(text)
            await until_today_is(client, run.expected(), 10, "the exports in status")
            sent = list(run.relay.exports)
            assert sent and all(e.status == 200 for e in sent), [e.status for e in sent]
            for export in sent:  # as an exporter retries a batch whose answer it lost
                status, _, _ = await asyncio.to_thread(
                    post, run.otlp_url + export.path, export.body, export.content_type
                )
                assert status == 200
            after = await client.status()
        assert today_sum(after) == {**run.expected(), "events": calls(run)}


@pytest.mark.real_tools
@pytest.mark.parametrize(("cls", "service", "branch"), TOOLS)
async def test_a_real_tool_through_its_logs_and_otlp_at_once_counts_once(
    cls: type[Tool], service: str, branch: str, tmp_path: Path
) -> None:
    """Both orders, on one run's real files and batches: OTLP first (the sidecar receives the
    exports; its log source reads the logs afterwards), then logs first (a scan, then the same
    batches sent to a second data home's receiver)."""
    need_receiver()
    assert cls.source is not None
    need_source(cls.source, branch)
    async with real_run(cls, tmp_path, otlp=True, relay=True) as run:
        assert run.relay is not None and run.otlp_url is not None
        once = {**run.expected(), "events": 0}  # filled in below
        async with run.sidecar(sources=True, otlp=True) as client:
            await receiver_up(run)
            for text in PROMPTS:
                await run.prompt(text)
            once = {**run.expected(), "events": calls(run)}
            if service == "claude-code":
                await until_today_is(client, run.expected(), 10, "the exports in status")
            else:
                # no key is shared by both channels: while the log source is on the receiver
                # acknowledges and ignores the tool; the logs count (the tool's folders
                # appeared after the sidecar started: watched as they did, and the scan below)
                await receiver_ignored(client, run)
        # the log channel now reads the same requests (the sidecar's watcher may have already)
        home = str(run.tool.home)
        done = run_cli(run.data, "scan", "--source", run.label(), HOME=home)
        assert done.returncode == 0, done.stderr
        assert today_sum(run.cli("status", "--json")) == once, "OTLP first, then the logs"

        run.data = tmp_path / "data-logs-first"
        done = run_cli(run.data, "scan", "--source", run.label(), HOME=home)
        assert done.returncode == 0, done.stderr
        assert today_sum(run.cli("status", "--json")) == once, "the logs alone"
        # Claude Code's ids are shared: the receiver alone must find them counted. The others
        # share none, so the README's rule applies: the log source, on, wins over the receiver
        async with run.sidecar(sources=service != "claude-code", otlp=True) as client:
            await receiver_up(run)
            for export in run.relay.exports:
                status, _, _ = await asyncio.to_thread(
                    post, run.otlp_url + export.path, export.body, export.content_type
                )
                assert status == 200
            assert today_sum(await client.status()) == once, "the logs first, then OTLP"


def channels(data: Path) -> dict[str, set[str]]:
    """The event ids each channel wrote to the ledger."""
    found: dict[str, set[str]] = {}
    for line in ledger_usage(data):
        found.setdefault(line["source"], set()).add(line["event_id"])
    return found


@pytest.mark.real_tools
async def test_a_real_claude_code_running_a_subagent_through_both_channels_counts_once(
    tmp_path: Path,
) -> None:
    """Claude Code runs a subagent (the fake answers the prompt with a call of its `Agent`
    tool) while a sidecar reads its transcripts and receives its OTLP: the subagent's request,
    in `<session>/subagents/agent-*.jsonl`, comes through both channels under one id, so each
    of the four requests counts once. Its transcripts' folder is made after the sidecar
    started: it is watched as it appears."""
    need_receiver()
    need_source("claudeCode", "main")
    async with real_run(ClaudeCode, tmp_path, otlp=True) as run:
        async with run.sidecar(sources=True, otlp=True) as client:
            await receiver_up(run)
            await run.prompt(SUBAGENT_PROMPT)
            await run.prompt("Say goodbye.")
            assert len(run.api.calls) == 4, [c.path for c in run.api.calls]

            def both_complete() -> bool:
                found = channels(run.data)
                return all(len(found.get(s, ())) >= 4 for s in ("claude-code", "otlp:claude-code"))

            await until(both_complete, timeout=20, what="every request through both channels")
            status = await client.status()
        found = channels(run.data)
        assert found["claude-code"] == found["otlp:claude-code"], "one id per request"
        (agent,) = run.tool.log_root().glob("projects/*/*/subagents/agent-*.jsonl")
        assert run.api.calls[1].ids["request_id"] in agent.read_text()
        once = {**run.expected(), "events": 4}
        assert today_sum(status) == once
        done = run_cli(run.data, "scan", "--source", "claude-code", HOME=str(run.tool.home))
        assert done.returncode == 0, done.stderr
        assert today_sum(run.cli("status", "--json")) == once
        (day,) = [d for d in run.cli("report", "--json", "--days", "1")["days"]]
        assert tokens_of(day["totals"]) == run.expected() and day["totals"]["events"] == 4
