"""Each tool's OTLP export to usage events: the real tools' exports (captured offline against a
fake model API whose usage is known), then what the captures lack (Copilot Chat, Qwen Code over
Gemini's API, older encodings), through a real sidecar's receiver over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.harness import STATUS_CHANGED, all_files_text
from tests.otlp_harness import answer, ledger_usage, post, receiver
from tests.otlp_payloads import (
    SECRET_OUTPUT,
    SECRET_PROMPT,
    claude_api_request,
    claude_logs,
    claude_noise,
    claude_token_metrics,
    codex_prompt,
    codex_sse_event,
    copilot_chat_span,
    copilot_invoke_agent,
    gemini_api_response,
    gemini_twins,
    logs_request,
    traces_request,
)
from tests.otlp_real import exports, known, known_totals

#: each captured tool's `service.name`, and the DX tool it is pushed under here
REAL = {
    "claude-code": ("claude-code", "claude-code"),
    "gemini-cli": ("gemini-cli", "gemini-cli"),
    "codex": ("codex_exec", "codex"),
    "copilot-cli": ("github-copilot", "copilot-cli"),
    "qwen-code": ("qwen-code", "qwen-code"),
}
TOOLS_SETTING = {"codex_exec": "codex", "github-copilot": "copilot-cli"}


def totals(home: Path, tool: str) -> tuple[int, int, int, int, int]:
    """(events, input, output, cache write, cache read) of the ledger's distinct events."""
    best: dict[str, dict[str, Any]] = {}
    for line in ledger_usage(home):
        if line["tool"] != tool:
            continue
        old = best.get(line["event_id"])
        total = sum(line[k] for k in ("input_tokens", "output_tokens"))
        total += line["cache_write_tokens"] + line["cache_read_tokens"]
        if old is None or total >= old["_total"]:
            best[line["event_id"]] = {**line, "_total": total}
    return (
        len(best),
        sum(e["input_tokens"] for e in best.values()),
        sum(e["output_tokens"] for e in best.values()),
        sum(e["cache_write_tokens"] for e in best.values()),
        sum(e["cache_read_tokens"] for e in best.values()),
    )


def today_tokens(status: dict[str, Any], tool: str) -> tuple[int, int, int, int, int] | None:
    t = status["today"]["tools"].get(tool)
    if t is None:
        return None
    return (
        t["events"],
        t["input_tokens"],
        t["output_tokens"],
        t["cache_write_tokens"],
        t["cache_read_tokens"],
    )


@pytest.mark.parametrize("tool", sorted(REAL))
async def test_a_real_tools_export_lands_once_with_the_known_usage(home: Path, tool: str) -> None:
    service, dx_tool = REAL[tool]
    expected = (len(known(tool)), *known_totals(tool))
    bodies = exports(tool)
    async with receiver(home, otlp={"tools": TOOLS_SETTING}) as (client, url):
        for path, request in bodies:
            response = await post(url, path, request)
            assert response.status_code == 200, response.text
            assert answer(response) == {}
            assert "access-control-allow-origin" not in response.headers
        exported = time.monotonic()
        status = await client.status()
        assert today_tokens(status, dx_tool) == expected
        # the editor is told as well, within 2 s of the export
        while not any(today_tokens(s, dx_tool) == expected for s in client.statuses):
            left = 2.0 - (time.monotonic() - exported)
            assert left > 0, "no statusChanged within 2 s of the export"
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    client.protocol.wait_for_notification_async(STATUS_CHANGED), left
                )
        # the exporter sends everything again (it saw no answer): nothing is added
        for path, request in bodies:
            assert (await post(url, path, request)).status_code == 200
        assert today_tokens(await client.status(), dx_tool) == expected
    assert totals(home, dx_tool) == expected
    lines = ledger_usage(home)
    assert {line["source"] for line in lines} == {f"otlp:{service}"}
    assert all(line["model"] for line in lines)
    # the tools' own prompts, command lines and ids are in their exports; none is stored
    stored = all_files_text(home)
    for secret in ("Say hello.", "Say goodbye.", "process.command_args", "cbdc9676", "req_fake"):
        assert secret not in stored


async def test_claude_code_cost_model_and_every_number_encoding(home: Path) -> None:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    records = [
        # numbers as strings (before 2.1.122), as JSON numbers (2.1.233), as OTLP strings
        claude_api_request(
            now, "req_a", inp=10, out=20, cache_read=30, cache_creation=40, cost=0.05, strings=True
        ),
        claude_api_request(
            now, "req_b", inp=1, out=2, cache_read=3, cache_creation=4, cost=0.25, numbers=True
        ),
        claude_api_request(now, "req_c", inp=100, out=200, cost=None),
        *claude_noise(now),
    ]
    async with receiver(home) as (client, url):
        response = await post(url, "/v1/logs", claude_logs(records), compress=True)
        assert (response.status_code, answer(response)) == (200, {})
        metrics = await post(url, "/v1/metrics", claude_token_metrics(now, 111))
        assert (metrics.status_code, answer(metrics)) == (200, {})
        today = (await client.status())["today"]["tools"]["claude-code"]
    assert totals(home, "claude-code") == (3, 111, 222, 44, 33)
    by_tokens = {line["input_tokens"]: line for line in ledger_usage(home)}
    assert by_tokens[10]["spend_cents"] == 5 and by_tokens[1]["spend_cents"] == 25
    assert by_tokens[10]["model"] == "claude-sonnet-4-5-20250929"
    # no cost sent: estimated from the offline prices, and marked as such
    assert by_tokens[100]["metrics"]["spend_estimated_cents"] == by_tokens[100]["spend_cents"]
    assert today["spend_cents"] == pytest.approx(30 + by_tokens[100]["spend_cents"], abs=0.01)
    stored = all_files_text(home)
    assert SECRET_PROMPT not in stored and SECRET_OUTPUT not in stored


async def test_gemini_cli_and_qwen_code_input_without_cache_and_thoughts_as_output(
    home: Path,
) -> None:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    gemini = [
        gemini_api_response(now, "p1", inp=1200, out=47, cached=200, thoughts=3, tool=30),
        # the same prompt's next call: the same session and prompt id, another moment
        gemini_api_response(now + timedelta(seconds=2), "p1", inp=1300, out=10, cached=1200),
        *gemini_twins(now, "p1", 1200, 47),
    ]
    # Qwen Code with Gemini's own API (`--auth-type gemini`): thoughts beside the output, as
    # its total says (the real capture, over an OpenAI-compatible API, has them inside)
    qwen = [
        gemini_api_response(
            now,
            "q1",
            event="qwen-code.api_response",
            model="qwen3-coder-plus",
            inp=5000,
            out=100,
            cached=4000,
            thoughts=20,
        )
    ]
    async with receiver(home) as (_, url):
        for service, records in (("gemini-cli", gemini), ("qwen-code", qwen)):
            response = await post(url, "/v1/logs", logs_request(service, records, service))
            assert (response.status_code, answer(response)) == (200, {})
    assert totals(home, "gemini-cli") == (2, 1000 + 30 + 100, 47 + 3 + 10, 0, 200 + 1200)
    assert totals(home, "qwen-code") == (1, 1000, 120, 0, 4000)
    assert SECRET_PROMPT not in all_files_text(home)


async def test_codex_takes_completed_responses_only_and_never_adds_tool_token_count(
    home: Path,
) -> None:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    records = [
        codex_prompt(now),
        codex_sse_event(now, "response.created"),
        codex_sse_event(now, "response.output_text.delta"),
        codex_sse_event(now),  # 0.169 sends each completion first without counts
        codex_sse_event(now, inp=1200, out=50, cached=200, reasoning=3),
        codex_sse_event(now + timedelta(seconds=1), inp=2400, out=70, cached=1200),
    ]
    async with receiver(home) as (_, url):
        response = await post(url, "/v1/logs", logs_request("codex-cli", records, "codex"))
        assert (response.status_code, answer(response)) == (200, {})
    assert totals(home, "codex-cli") == (2, 1000 + 1200, 120, 0, 1400)


async def test_copilot_chat_spans_count_and_invoke_agent_does_not(home: Path) -> None:
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    legacy = copilot_chat_span(now, "b7ad6b7169203332", response_id=None, inp=900, out=9)
    for pair in legacy["attributes"]:  # Copilot CLI before 1.0.64: underscore names
        pair["key"] = pair["key"].replace("cache_read.input_tokens", "cache_read_input_tokens")
    spans = [
        copilot_invoke_agent(now, 3000, 300),
        copilot_chat_span(
            now,
            "53995c3f42cd8ad8",
            response_id="chatcmpl-1",
            inp=2000,
            out=200,
            cache_read=1500,
            cache_creation=100,
        ),
        copilot_chat_span(
            now, "a3ce929d0e0e4736", response_id="chatcmpl-2", inp=1000, out=100, cache_read=400
        ),
        legacy,
        # another tool's GenAI span (Gemini CLI traces its calls too): its logs count, not this
        {**copilot_chat_span(now, "0102030405060708", response_id="g-1", inp=5, out=5)},
    ]
    async with receiver(home, otlp={"tools": {"copilot-chat": "github-copilot"}}) as (_, url):
        response = await post(url, "/v1/traces", traces_request("copilot-chat", spans[:4]))
        assert (response.status_code, answer(response)) == (200, {})
        other = await post(url, "/v1/traces", traces_request("gemini-cli", spans[4:]))
        assert (other.status_code, answer(other)) == (200, {})
    assert totals(home, "github-copilot") == (3, 400 + 600 + 900, 309, 100, 1900)
    assert totals(home, "gemini-cli")[0] == 0


def as_copilot_chat(request: dict[str, Any]) -> dict[str, Any]:
    """A real Copilot CLI traces body as Copilot Chat would label it: the same GenAI span
    instrumentation (`chat <model>` spans with `gen_ai.usage.*`, an `invoke_agent` around
    them) under Copilot Chat's default `service.name`."""
    for resource_spans in request["resourceSpans"]:
        for pair in resource_spans["resource"]["attributes"]:
            if pair["key"] == "service.name":
                pair["value"] = {"stringValue": "copilot-chat"}
    return request


@pytest.mark.parametrize("log_source", ["copilotChat", "copilotCli"])
async def test_copilot_chat_counts_the_real_copilot_span_shape_unless_its_log_source_is_on(
    home: Path, tmp_path: Path, log_source: str
) -> None:
    """Copilot Chat cannot run here (README); its mapping is pinned on the real Copilot CLI
    1.0.102 spans (string counts, the cache inside input, `invoke_agent` repeating each call).
    While Copilot Chat's own log source is on, the receiver leaves Copilot Chat to it; Copilot
    CLI's log source says nothing about Copilot Chat."""
    traces = [(p, as_copilot_chat(r)) for p, r in exports("copilot-cli") if p == "/v1/traces"]
    assert len(traces) == 2
    (tmp_path / "logs").mkdir()
    sources = {log_source: {"enabled": True, "path": str(tmp_path / "logs")}}
    async with receiver(home, sources=sources) as (_, url):
        for path, request in traces:
            response = await post(url, path, request)
            assert (response.status_code, answer(response)) == (200, {})
    counted = totals(home, "copilot-chat")
    if log_source == "copilotChat":
        assert counted[0] == 0 and not ledger_usage(home)
    else:
        assert counted == (len(known("copilot-cli")), *known_totals("copilot-cli"))
        assert {line["source"] for line in ledger_usage(home)} == {"otlp:copilot-chat"}
