"""Real tools, the log channel: each real CLI runs prompts offline against the fake model API
while a real sidecar reads its logs (the tool's log source, found where it looks by default in
the tool's fake HOME). The ledger, `status` and `report` hold exactly the fake's known usage,
once; a scan afterwards adds nothing; nothing of the conversation reaches the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from dx_lsp_telemetry.sources.registry import SOURCES
from tests.harness import run_cli
from tests.real.real_session import need_source, real_run, today_sum, tokens_of, until_today_is
from tests.real.tools import Aider, ClaudeCode, Codex, CopilotCli, GeminiCli, QwenCode, Tool
from tests.source_logs import ledger_bytes

#: each tool, and the branch its log source comes from until it is merged
TOOLS = [
    pytest.param(ClaudeCode, "main", id="claude-code"),
    pytest.param(Codex, "main", id="codex"),
    pytest.param(GeminiCli, "srcB", id="gemini-cli"),
    pytest.param(CopilotCli, "srcA", id="copilot-cli"),
    pytest.param(QwenCode, "main", id="qwen-code"),
    pytest.param(Aider, "srcD", id="aider"),
]
DEADLINE = 20.0  # seconds; a hint is read 0.2 s after the write, a scan once a minute


@pytest.mark.real_tools
@pytest.mark.parametrize(("cls", "branch"), TOOLS)
async def test_a_real_tool_s_logs_land_in_the_ledger_exactly_once(
    cls: type[Tool], branch: str, tmp_path: Path
) -> None:
    assert cls.source is not None
    need_source(cls.source, branch)
    label = SOURCES[cls.source].label
    async with real_run(cls, tmp_path) as run:
        await run.prompt("Say hello.")  # before the sidecar starts: history
        async with run.sidecar(sources=True, otlp=False) as client:
            await until_today_is(client, run.expected(logged=True), DEADLINE, "the history")
            await run.prompt("Say goodbye.")  # while it runs: the watcher's hints
            await run.prompt("Say thanks.")
            status = await until_today_is(
                client, run.expected(logged=True), DEADLINE, "the prompts while it runs"
            )
        expected = run.expected(logged=True)
        calls = 3 * cls.calls_per_prompt  # Qwen Code's background calls count too
        assert len(run.api.calls) == calls, [c.path for c in run.api.calls]
        assert set(status["today"]["tools"]) == {label}
        today = status["today"]["tools"][label]
        assert tokens_of(today) == expected
        assert today["events"] == calls
        # once: the CLI reads every file again (a new process, as after a restart)
        done = run_cli(run.data, "scan", "--source", label, HOME=str(run.tool.home))
        assert done.returncode == 0, done.stderr
        report = run.cli("report", "--json", "--days", "1")
        days = [d for d in report["days"] if d["tool"] == label]
        assert len(days) == 1 and tokens_of(days[0]["totals"]) == expected
        assert days[0]["totals"]["events"] == calls
        assert today_sum(run.cli("status", "--json")) == {**expected, "events": calls}
        ledger = b"".join(ledger_bytes(run.data).values()).decode()
        for private in ("Say hello", "Fake reply", "sandbox", "msg_fake", "resp_fake", "chatcmpl"):
            assert private not in ledger
