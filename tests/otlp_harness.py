"""A real sidecar with its OTLP receiver on, and real HTTP requests to it on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.harness import BASE_SETTINGS, Sidecar, sidecar, until_async
from tests.otlp_payloads import encoded, free_port


def otlp_settings(port: int, **extra: Any) -> dict[str, Any]:
    otlp = {"enabled": True, "port": port, **extra.pop("otlp", {})}
    return {
        **BASE_SETTINGS,
        "flush": {"enabled": False, "delaySeconds": 0},
        "otlp": otlp,
        **extra,
    }


async def listening(client: Sidecar, port: int, timeout: float = 15.0) -> dict[str, Any]:
    async def up() -> dict[str, Any] | None:
        status = await client.status()
        otlp = status.get("otlp", {})
        return status if otlp.get("state") == "listening" and otlp.get("port") == port else None

    result: dict[str, Any] = await until_async(up, timeout, what=f"the receiver on port {port}")
    return result


@asynccontextmanager
async def receiver(
    home: Path, port: int | None = None, **settings: Any
) -> AsyncIterator[tuple[Sidecar, str]]:
    """A sidecar listening for OTLP; its base URL."""
    port = port or free_port()
    async with sidecar(home, otlp_settings(port, **settings)) as client:
        await listening(client, port)
        yield client, f"http://127.0.0.1:{port}"


async def post(
    url: str,
    path: str,
    request: dict[str, Any],
    *,
    compress: bool = False,
    timeout: float = 10.0,
) -> httpx.Response:
    data, headers = encoded(request, compress=compress)
    async with httpx.AsyncClient(timeout=timeout) as http:
        return await http.post(url + path, content=data, headers=headers)


def answer(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "application/json", response.headers
    return json.loads(response.content)


def ledger_usage(home: Path) -> list[dict[str, Any]]:
    """Every usage line of the ledger, as written."""
    lines = []
    for path in sorted((home / "ledger").glob("*.jsonl")):
        for text in path.read_text().splitlines():
            line = json.loads(text)
            if line.get("type") == "usage":
                lines.append(line)
    return lines
