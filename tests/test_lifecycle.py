"""The sidecar's life as an editor sees it: starting, exiting, stdout hygiene, live settings.

Real processes over real stdio (pytest-lsp's client, or raw bytes where the framing itself is
under test), real files, a real HTTP server on 127.0.0.1 playing DX.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types

from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    date_ago,
    days_ago,
    sidecar,
    sidecar_env,
    start_sidecar,
    state_of,
    stop_sidecar,
    until_async,
)

EXIT_WITHIN = 2.0  # README.md, Reliability: the process exits by itself within 2 s
FLUSH_NOW = "dxTelemetry.flushNow"
NO_FLUSH: dict[str, Any] = {**BASE_SETTINGS, "flush": {"enabled": False, "delaySeconds": 0}}


# -- helpers -----------------------------------------------------------------------------------


def running(
    home: Path, settings: dict[str, Any] | None = None, **kw: Any
) -> AbstractAsyncContextManager[Sidecar]:
    """A sidecar with the background push off unless `settings` say otherwise."""
    return sidecar(home, NO_FLUSH if settings is None else settings, **kw)


async def seconds_to_exit(process: asyncio.subprocess.Process, since: float) -> float:
    """Seconds from `since` (monotonic) until `process` exits; fails after a generous 10 s."""
    await asyncio.wait_for(process.wait(), 10)
    return time.monotonic() - since


async def short_lived_editor() -> asyncio.subprocess.Process:
    """A stand-in editor process: it waits on its stdin until killed."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.stdin.read()", stdin=asyncio.subprocess.PIPE
    )


# -- exiting -----------------------------------------------------------------------------------


async def test_exits_within_2_s_of_shutdown_and_exit(home: Path) -> None:
    client = await start_sidecar(home, NO_FLUSH)
    try:
        await client.record(input_tokens=1)
        await asyncio.wait_for(client.shutdown_async(None), 10)
        start = time.monotonic()
        client.exit(None)
        assert await seconds_to_exit(client.process, start) < EXIT_WITHIN
        assert client.process.returncode == 0
    finally:
        await stop_sidecar(client)


async def test_exits_within_2_s_of_stdin_closing_without_shutdown(home: Path) -> None:
    client = await start_sidecar(home, NO_FLUSH)
    try:
        await client.record(input_tokens=1)
        stdin = client.process.stdin
        assert stdin is not None
        start = time.monotonic()
        stdin.close()
        assert await seconds_to_exit(client.process, start) < EXIT_WITHIN
        assert client.process.returncode == 0
    finally:
        await stop_sidecar(client)


async def test_exits_within_2_s_of_the_editor_process_dying(home: Path) -> None:
    editor = await short_lived_editor()
    try:
        client = await start_sidecar(home, NO_FLUSH, process_id=editor.pid)
        try:
            await client.record(input_tokens=1)
            assert client.process.returncode is None
            editor.kill()
            await editor.wait()
            start = time.monotonic()
            assert await seconds_to_exit(client.process, start) < EXIT_WITHIN
            assert client.process.returncode == 0
        finally:
            await stop_sidecar(client)
    finally:
        if editor.returncode is None:
            editor.kill()
            await editor.wait()


@pytest.mark.parametrize(
    "args",
    [("--stdio", "--clientProcessId={pid}"), ("serve", "--clientProcessId={pid}", "--stdio")],
)
async def test_stdio_and_client_process_id_flags_are_accepted(
    home: Path, args: tuple[str, ...]
) -> None:
    argv = [a.format(pid=os.getpid()) for a in args]
    client = await start_sidecar(home, NO_FLUSH, args=argv)
    try:
        answer = await client.record(input_tokens=4)
        assert answer["recorded"] is True
        status = await client.status()
        assert status["today"]["tools"]["acme-ai"]["input_tokens"] == 4
        await asyncio.wait_for(client.shutdown_session(), 10)
        assert client.process.returncode == 0
    finally:
        await stop_sidecar(client)


@pytest.mark.parametrize("command", ["console script", "python -m"])
def test_bare_command_on_a_terminal_prints_help_instead_of_waiting(
    home: Path, command: str
) -> None:
    script = Path(sys.executable).with_name("dx-lsp-telemetry")
    argv = (
        [str(script)] if command == "console script" else [sys.executable, "-m", "dx_lsp_telemetry"]
    )
    if command == "console script" and not script.exists():
        pytest.skip(f"{script} is not installed")
    leader, follower = pty.openpty()  # stdin is a terminal, as when a user types the command
    try:
        done = subprocess.run(
            argv,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=15,  # on timeout the child is killed and the test fails
            env=sidecar_env(home),
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: dx-lsp-telemetry"), done.stdout
    assert "Content-Length" not in done.stdout


# -- stdout carries only the protocol ----------------------------------------------------------

_HEADER = re.compile(rb"((?:[A-Za-z-]+: [^\r\n]*\r\n)+)\r\n")


class RawLsp:
    """The sidecar's stdio as bytes: every byte of stdout must belong to a framed message."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.received: list[dict[str, Any]] = []
        self._next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any) -> int:
        self._next_id += 1
        self.send({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    async def read_message(self) -> dict[str, Any] | None:
        """The next framed message; None at a clean end of stdout. Anything else fails."""
        stdout = self.process.stdout
        assert stdout is not None
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = await stdout.read(1)
            if not byte:
                assert head == b"", f"stdout ended inside a header: {head!r}"
                return None
            head += byte
            assert len(head) < 1000, f"not an LSP header on stdout: {head!r}"
        match = _HEADER.fullmatch(head)
        assert match, f"not an LSP header on stdout: {head!r}"
        fields = dict(line.split(b": ", 1) for line in match.group(1).split(b"\r\n") if line)
        assert set(fields) <= {b"Content-Length", b"Content-Type"}, fields
        body = await stdout.readexactly(int(fields[b"Content-Length"]))
        message: dict[str, Any] = json.loads(body)
        assert message.get("jsonrpc") == "2.0", message
        self.received.append(message)
        return message

    async def answer_to(self, request_id: int) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.read_message(), 15)
            assert message is not None, f"stdout closed before the answer to {request_id}"
            if "method" in message and "id" in message:  # a request of the server's: answer it
                self.send({"id": message["id"], "result": None})
            elif message.get("id") == request_id and "method" not in message:
                return message


async def test_stdout_carries_only_framed_protocol_messages(home: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dx_lsp_telemetry",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=sidecar_env(home),
    )
    try:
        lsp = RawLsp(process)
        # an unknown setting and a bad value: the sidecar has something to log
        options = {**NO_FLUSH, "noSuchSetting": 1, "dayBoundary": "mars"}
        init = lsp.request(
            "initialize",
            {"processId": os.getpid(), "capabilities": {}, "initializationOptions": options},
        )
        assert "result" in await lsp.answer_to(init)
        lsp.send({"method": "initialized", "params": {}})
        ok = lsp.request("dxTelemetry/recordUsage", {"input_tokens": 3})
        assert (await lsp.answer_to(ok))["result"]["recorded"] is True
        bad = lsp.request("dxTelemetry/recordUsage", {"input_tokens": -3, "bad key!": 1})
        assert (await lsp.answer_to(bad))["error"]["code"] == -32602
        status = lsp.request("dxTelemetry/status", {})
        assert (await lsp.answer_to(status))["result"]["today"]["tools"]["acme-ai"]["events"] == 1
        flush = lsp.request("workspace/executeCommand", {"command": FLUSH_NOW, "arguments": []})
        assert "result" in await lsp.answer_to(flush)
        unknown = lsp.request("dxTelemetry/noSuchMethod", {})
        assert "error" in await lsp.answer_to(unknown)
        shutdown = lsp.request("shutdown", None)
        assert (await lsp.answer_to(shutdown))["result"] is None
        lsp.send({"method": "exit", "params": None})
        while await asyncio.wait_for(lsp.read_message(), 10) is not None:
            pass  # the rest of stdout, to its end: still only framed messages
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert process.stderr is not None
        stderr = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "noSuchSetting" in stderr  # the logs went to stderr (and nothing to stdout)
    methods = {m.get("method") for m in lsp.received}
    assert "window/showMessage" not in methods and "window/showMessageRequest" not in methods
    assert "window/logMessage" in methods


# -- settings, live ----------------------------------------------------------------------------


async def test_did_change_configuration_applies_settings_without_a_restart(
    home: Path, dx: FakeDx
) -> None:
    day = date_ago(2)
    async with running(home, NO_FLUSH) as client:
        assert (await client.record(input_tokens=1))["tool"] == "acme-ai"
        assert (await client.status())["config"]["destination"] == "outbox"

        client.change_settings({**NO_FLUSH, "tool": "beta-ai", "instanceUrl": dx.url})

        async def destination_is(name: str) -> bool:
            return bool((await client.status())["config"]["destination"] == name)

        await until_async(lambda: destination_is("dx"), what="instanceUrl applied")
        answer = await client.record(timestamp=days_ago(2), input_tokens=2)
        assert answer["tool"] == "beta-ai" and answer["recorded"] is True
        assert await client.command(FLUSH_NOW) == {
            "pushed": [{"date": day, "tool": "beta-ai", "destination": "dx"}],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
        assert [r["tool"] for r in dx.stored] == ["beta-ai"]

        client.change_settings({**NO_FLUSH, "enabled": False})
        await until_async(lambda: destination_is("off"), what="enabled: false applied")
        assert (await client.record(input_tokens=3))["recorded"] is False
        status = await client.status()
        assert status["today"]["tools"]["acme-ai"]["input_tokens"] == 1
    assert len(dx.requests) == 1


async def test_pull_model_settings_are_read_with_workspace_configuration(
    home: Path, dx: FakeDx
) -> None:
    day = date_ago(2)
    async with running(home, NO_FLUSH) as client:
        await client.record(timestamp=days_ago(2), input_tokens=6)
        status = await client.status()
        assert status["config"]["destination"] == "outbox"
        assert state_of(status, day) == "pending"

        pulled = {**NO_FLUSH, "email": "pulled@example.com", "instanceUrl": dx.url}
        client.set_configuration(pulled, section="dxTelemetry")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

        async def pulled_in() -> bool:
            return bool((await client.status())["config"]["destination"] == "dx")

        await until_async(pulled_in, what="the pulled instanceUrl applied")
        assert await client.command(FLUSH_NOW) == {
            "pushed": [{"date": day, "tool": "acme-ai", "destination": "dx"}],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
    assert [(r["email"], r["date"], r["input_tokens"]) for r in dx.stored] == [
        ("pulled@example.com", day, 6)
    ]


async def test_without_initialization_options_the_settings_are_pulled_at_start(home: Path) -> None:
    client = Sidecar()
    client.set_configuration(
        {"email": "pulled@example.com", "tool": "pulled-ai"}, section="dxTelemetry"
    )
    await client.start_io(sys.executable, "-m", "dx_lsp_telemetry", env=sidecar_env(home))
    try:
        await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
                    process_id=os.getpid(),
                    initialization_options=None,
                )
            ),
            15,
        )
        answer = await client.record(input_tokens=1)
        assert answer["tool"] == "pulled-ai"
        assert (await client.status())["config"]["problems"] == []
    finally:
        await stop_sidecar(client)
