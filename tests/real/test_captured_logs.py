"""Our log sources on what the real tools wrote (the committed captures): the ledger holds
exactly the usage the fake model API reported, once. No tool runs here; `make test` runs these.
"""

from __future__ import annotations

from pathlib import Path

from dx_lsp_telemetry.otlp.ids import claude_request
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.codex import Codex
from dx_lsp_telemetry.sources.qwen_code import QwenCode
from tests.otlp_harness import ledger_usage
from tests.real.captured import copy_files, model_calls
from tests.real.known_usage import summed
from tests.source_logs import ingestor, ledger_total

#: the captures keep their dates; history older than retentionDays is otherwise never read
KEEP = {"retentionDays": 3650}


def bucket_totals(tool: str) -> tuple[int, int, int, int]:
    """The fake's known usage, as `ledger_total(...).tokens` orders it."""
    s = summed(c.usage for c in model_calls(tool))
    return (s["input_tokens"], s["output_tokens"], s["cache_write_tokens"], s["cache_read_tokens"])


def test_the_captures_hold_two_prompts_model_calls_each_with_distinct_usage() -> None:
    for tool in ("claude-code", "gemini-cli", "codex", "copilot-cli", "aider", "qwen-code"):
        calls = model_calls(tool)
        # Qwen Code: each prompt's answer, then its background memory extractor's call
        per_prompt = 2 if tool == "qwen-code" else 1
        assert [c.index for c in calls] == list(range(2 * per_prompt)), tool
        assert len({c.usage for c in calls}) == len(calls), tool


def test_claude_code_over_a_gateway_counts_the_cache_writes_the_api_reported(
    tmp_path: Path,
) -> None:
    """Claude Code 2.1.328 writes `cache_creation: {ephemeral_5m: 0, ephemeral_1h: 0}` beside
    `cache_creation_input_tokens: 700` when the API sends no split: 700 were written."""
    logs = copy_files("claude-code", "home/.claude", tmp_path / "claude")
    data = tmp_path / "data"
    expected = bucket_totals("claude-code")
    assert expected == (1000 + 1001, 50 + 51, 700 + 701, 200 + 201)
    ingestor(data, ClaudeCode(), logs, settings=KEEP).scan()
    day = ledger_total(data, "claude-code")
    assert (day.events, day.tokens) == (2, expected)
    ingestor(data, ClaudeCode(), logs, settings=KEEP).scan()  # a second read adds nothing
    assert ledger_total(data, "claude-code").tokens == expected


def test_claude_code_with_a_subagent_counts_each_request_once_under_otlp_s_id(
    tmp_path: Path,
) -> None:
    """The real Claude Code running a subagent: its request is in
    `<session>/subagents/agent-*.jsonl` (`isSidechain`, its own `requestId`), the parent's
    before and after it in the session's transcript; each counts once, under the id the OTLP
    receiver gives the request's `request_id`."""
    logs = copy_files("claude-code-subagent", "home/.claude", tmp_path / "claude")
    (agent,) = logs.glob("projects/*/*/subagents/agent-*.jsonl")
    calls = model_calls("claude-code-subagent")
    assert calls[1].ids["request_id"] in agent.read_text()
    data = tmp_path / "data"
    for _ in range(2):  # a second read adds nothing
        ingestor(data, ClaudeCode(), logs, settings=KEEP).scan()
        day = ledger_total(data, "claude-code")
        assert (day.events, day.tokens) == (4, bucket_totals("claude-code-subagent"))
    stored = {line["event_id"] for line in ledger_usage(data)}
    assert stored == {claude_request(c.ids["request_id"]) for c in calls}


def test_codex_rollout_counts_what_the_api_reported(tmp_path: Path) -> None:
    logs = copy_files("codex", "home/.codex", tmp_path / "codex")
    data = tmp_path / "data"
    ingestor(data, Codex(), logs, settings=KEEP).scan()
    day = ledger_total(data, "codex")
    assert (day.events, day.tokens) == (2, bucket_totals("codex"))


def test_qwen_code_chat_counts_every_call_once_with_the_cache_out_of_input(
    tmp_path: Path,
) -> None:
    """Qwen Code 0.24.4's prompt count includes the cache (1200 = 1000 + 200) and its output
    count the reasoning, repeated as thoughts; the answers' `assistant` records repeat the
    telemetry records' counts: four calls, each once."""
    logs = copy_files("qwen-code", "home/.qwen", tmp_path / "qwen")
    data = tmp_path / "data"
    expected = bucket_totals("qwen-code")
    assert expected == (4006, 206, 0, 806)
    ingestor(data, QwenCode(), logs, settings=KEEP).scan()
    day = ledger_total(data, "qwen-code")
    assert (day.events, day.tokens) == (4, expected)
