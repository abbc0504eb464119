"""The receiver's life: only the leader listens, a new leader takes the port over, a port in use
is a problem in status (retried, never a crash), settings move or stop it, and a ledger that
cannot be written makes exporters retry (503) without losing or doubling anything."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import kill_9, sidecar, start_sidecar, stop_sidecar, until_async
from tests.otlp_harness import answer, ledger_usage, listening, otlp_settings, post, receiver
from tests.otlp_payloads import free_port
from tests.test_lifecycle import EXIT_WITHIN, seconds_to_exit, short_lived_editor
from tests.test_otlp_http import claude_batch

resource = pytest.importorskip("resource")


async def refused(url: str) -> bool:
    try:
        await post(url, "/v1/logs", claude_batch(), timeout=2)
    except httpx.ConnectError:
        return True
    return False


async def export_with_retries(url: str, request_id: str, deadline: float) -> httpx.Response:
    """What an OTLP exporter does: send, and send the same batch again after a lost
    connection or a retryable answer, until it is taken."""
    while True:
        try:
            response = await post(url, "/v1/logs", claude_batch(request_id, 9), timeout=3)
            if response.status_code not in (429, 502, 503, 504):
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the batch was never taken"
        await asyncio.sleep(0.3)


async def test_a_port_in_use_is_a_problem_in_status_and_taken_once_free(home: Path) -> None:
    port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    try:
        async with sidecar(home, otlp_settings(port)) as client:

            async def problem() -> str | None:
                otlp = (await client.status())["otlp"]
                return otlp.get("problem") if otlp["state"] == "problem" else None

            text = await until_async(problem, what="the port problem")
            assert f"port {port}" in text and "dxTelemetry.otlp.port" in text
            status = await client.status()
            assert text in status["config"]["problems"]
            assert (await client.record(input_tokens=3))["recorded"] is True  # all else works
            squatter.close()
            await listening(client, port, timeout=20)  # retried every 10 s
            assert "problem" not in (await client.status())["otlp"]
            response = await post(f"http://127.0.0.1:{port}", "/v1/logs", claude_batch())
            assert response.status_code == 200
    finally:
        squatter.close()


async def test_settings_stop_and_move_the_receiver(home: Path) -> None:
    first, second = free_port(), free_port()
    async with sidecar(home, otlp_settings(first)) as client:
        await listening(client, first)
        client.change_settings(otlp_settings(first, otlp={"enabled": False}))

        async def off() -> bool:
            return bool((await client.status())["otlp"] == {"state": "off"})

        await until_async(off, what="the receiver off")
        assert await refused(f"http://127.0.0.1:{first}")
        client.change_settings(otlp_settings(second))
        await listening(client, second)
        assert await refused(f"http://127.0.0.1:{first}")
        response = await post(f"http://127.0.0.1:{second}", "/v1/logs", claude_batch())
        assert (response.status_code, answer(response)) == (200, {})
        # a bad port is named, and the receiver stays where it was
        client.change_settings(otlp_settings(80))

        async def named() -> list[str]:
            problems: list[str] = (await client.status())["config"]["problems"]
            return [p for p in problems if "dxTelemetry.otlp.port" in p]

        assert "1024 to 65535" in (await until_async(named, what="the bad port"))[0]

        # its default is used, as for every bad setting (listening there, or a problem if taken)
        async def moved() -> bool:
            otlp = (await client.status())["otlp"]
            return bool(otlp["port"] == 4319 and otlp["state"] in ("listening", "problem"))

        await until_async(moved, what="the receiver on the default port")


async def test_the_new_leader_takes_the_port_and_a_retrying_exporter_lands_once(
    home: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = otlp_settings(port)
    leader = await start_sidecar(home, settings)
    follower = None
    try:
        await listening(leader, port)
        follower = await start_sidecar(home, settings)

        async def standby() -> bool:
            status = await follower.status()  # type: ignore[union-attr]
            return status["leader"] is False and status["otlp"] == {"state": "standby"}

        await until_async(standby, what="the follower on standby")
        assert (await post(url, "/v1/logs", claude_batch("req_before", 4))).status_code == 200
        await kill_9(leader)
        started = time.monotonic()
        response = await export_with_retries(url, "req_during", started + 20)
        assert (response.status_code, answer(response)) == (200, {})
        took = time.monotonic() - started
        status = await follower.status()
        assert status["leader"] is True and status["otlp"] == {"state": "listening", "port": port}
        assert took < 10, f"the port was taken over after {took:.1f} s"
        # and the exporter, not sure of its last attempt, sends it once more
        assert (await post(url, "/v1/logs", claude_batch("req_during", 9))).status_code == 200
    finally:
        if follower is not None:
            await stop_sidecar(follower)
        if leader.process.returncode is None:
            await stop_sidecar(leader)
    ids = {}
    for line in ledger_usage(home):
        ids.setdefault(line["event_id"], []).append(line["input_tokens"])
    assert sorted(max(v) for v in ids.values()) == [4, 9]


def set_fsize(pid: int, limit: int | None) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


async def test_a_ledger_that_cannot_be_written_answers_503_and_the_retry_lands_once(
    home: Path,
) -> None:
    if not hasattr(resource, "prlimit"):
        pytest.skip("prlimit(2) is Linux only")
    async with receiver(home) as (client, url):
        set_fsize(client.pid, 1)  # every append now fails (EFBIG), as on a full disk
        try:
            response = await post(url, "/v1/logs", claude_batch("req_full", 8))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert "cannot be written" in answer(response)["message"]
            assert (await client.status())["otlp"]["state"] == "listening"
        finally:
            set_fsize(client.pid, None)
        again = await post(url, "/v1/logs", claude_batch("req_full", 8))
        assert (again.status_code, answer(again)) == (200, {})
        today = (await client.status())["today"]["tools"]["claude-code"]
        assert (today["events"], today["input_tokens"]) == (1, 8)


async def test_the_sidecar_exits_within_2_s_with_connections_open_and_frees_the_port(
    home: Path,
) -> None:
    editor = await short_lived_editor()
    port = free_port()
    try:
        client = await start_sidecar(home, otlp_settings(port), process_id=editor.pid)
        try:
            await listening(client, port)
            kept = httpx.AsyncClient()  # a kept-alive connection, idle
            assert (
                await kept.post(
                    f"http://127.0.0.1:{port}/v1/logs",
                    content=b"{}",
                    headers={"Content-Type": "application/json"},
                )
            ).status_code == 200
            _, stalled = await asyncio.open_connection("127.0.0.1", port)
            stalled.write(b"POST /v1/logs HTTP/1.1\r\nHost: localhost\r\n")  # and silence
            editor.kill()
            await editor.wait()
            start = time.monotonic()
            assert await seconds_to_exit(client.process, start) < EXIT_WITHIN
            with socket.socket() as s:  # free for the next leader at once (which, like
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # asyncio, reuses it)
                s.bind(("127.0.0.1", port))
                s.listen()
            stalled.close()
            await kept.aclose()
        finally:
            await stop_sidecar(client)
    finally:
        if editor.returncode is None:
            editor.kill()
            await editor.wait()
