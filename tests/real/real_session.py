"""One real tool run observed by a real sidecar: the fake model API, the tool in its sandbox,
a sidecar over stdio reading the tool's logs (a log source) and/or receiving its OTLP (the
receiver), and what the ledger, `status` and `report` then hold."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.sources.registry import SOURCES
from tests.harness import BASE_SETTINGS, Sidecar, cli_json, sidecar, sidecar_env, until_async
from tests.real.fake_model_api import FakeModelApi
from tests.real.known_usage import summed
from tests.real.otlp_capture import OtlpCapture
from tests.real.tools import Tool

TOKENS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
#: the developer's own tool settings must not point the sidecar at their real logs
_TOOL_ENV = (
    "CLAUDE_CONFIG_DIR",
    "CODEX_HOME",
    "XDG_CONFIG_HOME",
    "GEMINI_CLI_HOME",
    "COPILOT_HOME",
    "CONTINUE_GLOBAL_DIR",
    "QWEN_HOME",
    "QWEN_RUNTIME_DIR",
)


def need_tool(cls: type[Tool]) -> None:
    if not cls.installed():
        pytest.fail(f"{cls.name} {cls.version} is not installed at {cls.exe()}: `make real-tools`")


def need_source(name: str, branch: str) -> None:
    if name not in SOURCES:
        pytest.skip(
            f"the {name} log source is not in dx_lsp_telemetry/sources/registry.py yet "
            f"(being written on branch {branch})"
        )


def need_receiver() -> None:
    if importlib.util.find_spec("dx_lsp_telemetry.otlp") is None:
        pytest.skip("the OTLP receiver (dx_lsp_telemetry/otlp, branch otlp) is not merged yet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RealRun:
    tool: Tool
    api: FakeModelApi
    data: Path  #: the sidecar's data home
    otlp_port: int | None = None
    relay: OtlpCapture | None = None
    #: monotonic time each prompt's tool process exited (its exporters flush on exit)
    exits: list[float] = field(default_factory=list)

    @property
    def otlp_url(self) -> str | None:
        return None if self.otlp_port is None else f"http://127.0.0.1:{self.otlp_port}"

    async def prompt(self, text: str) -> None:
        await asyncio.to_thread(self.tool.prompt, text)
        self.exits.append(time.monotonic())

    def expected(self, *, logged: bool = False) -> dict[str, int]:
        """What the fake reported, summed: what the ledger must hold (`logged`: as much of it
        as the tool's own log can tell)."""
        usages = (c.usage for c in self.api.calls)
        return summed(self.tool.logged(u) if logged else u for u in usages)

    def settings(self, *, sources: bool, otlp: bool) -> dict[str, Any]:
        settings: dict[str, Any] = {**BASE_SETTINGS, "flush": {"enabled": False}}
        if sources and self.tool.source:
            source: dict[str, Any] = {"enabled": True}
            if self.tool.source_path():
                source["path"] = self.tool.source_path()
            settings["sources"] = {self.tool.source: source}
        if otlp:
            assert self.otlp_port is not None
            settings["otlp"] = {"enabled": True, "port": self.otlp_port}
        return settings

    def env(self) -> dict[str, str]:
        """The sidecar's: the tool's fake HOME, so each source finds the tool's files where it
        looks by default (no `path` setting)."""
        env = sidecar_env(self.data, HOME=str(self.tool.home))
        for name in _TOOL_ENV:
            env.pop(name, None)
        return env

    @asynccontextmanager
    async def sidecar(self, *, sources: bool, otlp: bool) -> AsyncIterator[Sidecar]:
        settings = self.settings(sources=sources, otlp=otlp)
        async with sidecar(self.data, settings, env=self.env()) as client:
            yield client

    def label(self) -> str:
        """The tool's log source's `scan --source` label."""
        assert self.tool.source is not None
        return SOURCES[self.tool.source].label

    def cli(self, *args: str) -> Any:
        return cli_json(self.data, *args, HOME=str(self.tool.home))


@asynccontextmanager
async def real_run(
    cls: type[Tool], tmp_path: Path, *, otlp: bool = False, relay: bool = False
) -> AsyncIterator[RealRun]:
    """The fake API and `cls` set up in a sandbox under `tmp_path`. With `otlp`, the tool exports
    to the sidecar's receiver port (through a relay that keeps each batch, with `relay`)."""
    need_tool(cls)
    with FakeModelApi(log=tmp_path / "fake-api.jsonl") as api:
        port = free_port() if otlp else None
        capture = None
        export_to = None
        if port is not None:
            export_to = f"http://127.0.0.1:{port}"
            if relay:
                capture = OtlpCapture(forward=export_to).start()
                export_to = capture.url
        try:
            tool = cls(tmp_path / "sandbox", api.url, export_to)
            tool.setup()
            yield RealRun(tool, api, tmp_path / "data", port, capture)
        finally:
            if capture is not None:
                capture.stop()


def today_sum(status: dict[str, Any]) -> dict[str, int]:
    """Today's four buckets and events, over every tool (one tool's traffic per test)."""
    totals = dict.fromkeys((*TOKENS, "events"), 0)
    for sums in status["today"]["tools"].values():
        for key in totals:
            totals[key] += int(sums.get(key, 0))
    return totals


async def until_today_is(
    client: Sidecar, expected: dict[str, int], timeout: float, what: str
) -> dict[str, Any]:
    """The first status whose today matches `expected` (tokens); a status with more than
    expected fails at once: counted twice."""

    async def matches() -> dict[str, Any] | None:
        status = await client.status()
        got = today_sum(status)
        over = [k for k in TOKENS if got[k] > expected[k]]
        assert not over, f"{what}: today {got} is over the known {expected}"
        return status if all(got[k] == expected[k] for k in TOKENS) else None

    status: dict[str, Any] = await until_async(matches, timeout=timeout, what=what)
    return status


def tokens_of(sums: dict[str, Any]) -> dict[str, int]:
    return {k: int(sums[k]) for k in TOKENS}
