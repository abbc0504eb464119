"""Real sidecars over real stdio, driven by pytest-lsp's client; helpers to wait on conditions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

from dx_lsp_telemetry.lsp.server import raw_json_converter

STATUS_CHANGED = "dxTelemetry/statusChanged"
TEST_TOKEN = "test-token-d41d8cd98f00"

#: Settings every test starts from: no random delay, no surprises.
BASE_SETTINGS: dict[str, Any] = {
    "email": "dev@example.com",
    "tool": "acme-ai",
    "flush": {"enabled": True, "delaySeconds": 0},
}


class Sidecar(LanguageClient):
    """pytest-lsp's client, keeping raw JSON results and recording statusChanged and stderr."""

    def __init__(self) -> None:
        super().__init__(converter_factory=raw_json_converter)
        register_lsp_features(self)
        self.statuses: list[dict[str, Any]] = []
        self.stderr_lines: list[str] = []
        self.feature(STATUS_CHANGED)(lambda ls, params: self.statuses.append(params))

    async def start_io(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        await super(LanguageClient, self).start_io(cmd, *args, **kwargs)
        assert self._server is not None and self._server.stderr is not None
        self._stderr_forwarder = asyncio.create_task(self._collect_stderr(self._server.stderr))

    async def _collect_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.stderr_lines.append(text)
            print(f"[sidecar {self.pid}] {text}", file=sys.stderr)

    @property
    def pid(self) -> int:
        return self._server.pid if self._server else -1

    @property
    def process(self) -> asyncio.subprocess.Process:
        assert self._server is not None
        return self._server

    async def request(self, method: str, params: Any) -> Any:
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), 15)

    async def record(self, **event: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("dxTelemetry/recordUsage", event)
        return result

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("dxTelemetry/status", {})
        return result

    async def command(self, name: str, *arguments: Any) -> Any:
        return await asyncio.wait_for(
            self.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(arguments))
            ),
            20,
        )

    def change_settings(self, settings: dict[str, Any]) -> None:
        self.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"dxTelemetry": settings})
        )

    def log_text(self) -> str:
        return "\n".join(m.message for m in self.log_messages)


def sidecar_env(home: Path, *, token: str | None = TEST_TOKEN, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DX_TELEMETRY_", "DX_DATA_CLOUD"))
    }
    env["DX_TELEMETRY_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        env["DX_DATA_CLOUD_TOKEN"] = token
    env.update(extra)
    return env


async def start_sidecar(
    home: Path,
    settings: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    process_id: int | None = None,
    args: Sequence[str] = (),
    wrapper: Sequence[str] = (),
    python: str = sys.executable,
    cwd: Path | None = None,
) -> Sidecar:
    """A sidecar over real stdio (extra command-line `args`; `wrapper`: a command that execs
    the rest, e.g. `unshare ...`), initialized; killed if that fails."""
    client = Sidecar()
    command = [*wrapper, python, "-m", "dx_lsp_telemetry", *args]
    await client.start_io(command[0], *command[1:], env=env or sidecar_env(home), cwd=cwd)
    try:
        await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
                    process_id=process_id or os.getpid(),
                    initialization_options=BASE_SETTINGS if settings is None else settings,
                )
            ),
            15,
        )
    except BaseException:
        await kill_9(client)
        raise
    return client


async def kill_9(client: Sidecar) -> None:
    """SIGKILL, as a crash would: no shutdown, no last words."""
    if client.process.returncode is None:
        client.process.kill()
    await asyncio.wait_for(client.process.wait(), 10)
    await client.stop()


async def stop_sidecar(client: Sidecar) -> None:
    """shutdown + exit if it still runs; SIGKILL if that fails. Never leaves an orphan."""
    server = client._server
    try:
        if server is not None and server.returncode is None:
            await asyncio.wait_for(client.shutdown_session(), 10)
    finally:
        if server is not None and server.returncode is None:
            server.kill()  # never leave an orphan, whatever went wrong
            await server.wait()
        await client.stop()


@asynccontextmanager
async def sidecar(
    home: Path, settings: dict[str, Any] | None = None, **kwargs: Any
) -> AsyncIterator[Sidecar]:
    client = await start_sidecar(home, settings, **kwargs)
    try:
        yield client
    finally:
        await stop_sidecar(client)


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll `predicate` until truthy or the deadline passes; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def until_async(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Like `until`, for a coroutine-returning predicate."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def day_entry(status: dict[str, Any], date: str, tool: str = "acme-ai") -> dict[str, Any] | None:
    return next((d for d in status["days"] if d["date"] == date and d["tool"] == tool), None)


def state_of(status: dict[str, Any] | None, date: str, tool: str = "acme-ai") -> str | None:
    entry = day_entry(status, date, tool) if status else None
    return entry["state"] if entry else None


def days_ago(n: int, hour: int = 12, minute: int = 0) -> str:
    """An RFC 3339 timestamp at hh:mm UTC, n days ago (n >= 2 is always a complete day)."""
    d = datetime.now(timezone.utc).date() - timedelta(days=n)
    return (
        datetime(d.year, d.month, d.day, hour, minute, tzinfo=timezone.utc)
        .isoformat()
        .replace("+00:00", "Z")
    )


def date_ago(n: int) -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=n)).isoformat()


def run_cli(
    home: Path, *args: str, token: str | None = TEST_TOKEN, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dx_lsp_telemetry", *args],
        env=sidecar_env(home, token=token, **env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def cli_json(home: Path, *args: str, **kwargs: Any) -> Any:
    done = run_cli(home, *args, **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def all_files_text(root: Path) -> str:
    """Every byte under `root`, decoded leniently (to prove a secret is nowhere on disk)."""
    chunks = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            chunks.append(path.read_bytes().decode(errors="replace"))
    return "\n".join(chunks)
