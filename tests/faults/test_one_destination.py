"""Fault injection: one DX record, one journal key, however the destination is spelled.

Instance URLs that differ only in spelling (scheme and host case, the default port, a trailing
slash) are one DX instance, and emails that differ only in case are one person: after a push,
changing the spelling (the CLI's env fallbacks, or the editor's settings over
`workspace/didChangeConfiguration`) sends nothing again, and the days stay `pushed`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.config import journal_destination
from dx_lsp_telemetry.settings import parse_settings
from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    TEST_TOKEN,
    date_ago,
    days_ago,
    run_cli,
    sidecar,
    state_of,
    until,
    until_async,
)

TOOL = "acme-ai"
FLUSH_NOW = "dxTelemetry.flushNow"
NOTHING: dict[str, list[Any]] = {
    "pushed": [],
    "failed": [],
    "pending": [],
    "unconfirmed": [],
    "expired": [],
}


def respell(url: str) -> list[str]:
    """`http://host:port` spelled as a user may type it, all meaning the same instance."""
    scheme, rest = url.split("://")
    return [url.upper(), f"{scheme.upper()}://{rest}", f"{url}/", f"{url}//", f"HTTP://{rest}/"]


def cli_env(url: str, email: str) -> dict[str, str]:
    return {
        "DX_TELEMETRY_INSTANCE_URL": url,
        "DX_TELEMETRY_EMAIL": email,
        "DX_TELEMETRY_TOOL": TOOL,
    }


def cli_flush(home: Path, url: str, email: str, *args: str) -> Any:
    done = run_cli(home, "flush", *args, "--json", **cli_env(url, email))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cli_states(home: Path, url: str, email: str) -> dict[str, str | None]:
    done = run_cli(home, "status", "--json", **cli_env(url, email))
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    return {day: state_of(status, day) for day in (date_ago(2), date_ago(3))}


def test_instance_url_spellings_are_one_destination() -> None:
    """https's :443 (the fake DX speaks plain http, so this one is checked on the key)."""

    def key(url: str) -> str:
        return journal_destination(parse_settings({"instanceUrl": url}, env={}).settings)

    same = ["https://acme.getdx.net", "HTTPS://Acme.GetDX.net:443/", "https://ACME.getdx.net/"]
    assert {key(u) for u in same} == {"dx:https://acme.getdx.net"}
    assert key("http://127.0.0.1:80") == key("http://127.0.0.1")
    assert key("https://acme.getdx.net:8443") != key("https://acme.getdx.net")
    assert key("https://acme.getdx.net/DX") != key("https://acme.getdx.net/dx")  # paths keep case


def test_the_cli_env_fallbacks_in_other_spellings_send_nothing_again(
    home: Path, dx: FakeDx
) -> None:
    for n in (2, 3):
        done = run_cli(
            home,
            "record",
            "--timestamp",
            days_ago(n),
            "--input-tokens",
            str(n),
            DX_TELEMETRY_TOOL=TOOL,
        )
        assert done.returncode == 0, done.stderr
    # a new user's first push, with the URL and email spelled their way
    first = cli_flush(home, dx.url.upper(), "Me@Example.com")
    assert {(p["date"], p["destination"]) for p in first["pushed"]} == {
        (date_ago(2), "dx"),
        (date_ago(3), "dx"),
    }
    assert {r["email"] for r in dx.stored} == {"Me@Example.com"}  # the email as configured

    urls = [dx.url, *respell(dx.url)]
    emails = ["me@example.com", "Me@Example.com", "ME@EXAMPLE.COM"]
    for i, url in enumerate(urls):  # each spelling of the URL, with a spelling of the email
        email = emails[i % len(emails)]
        assert cli_flush(home, url, email, "--dry-run") == [], (url, email)
        assert cli_flush(home, url, email) == NOTHING, (url, email)
        assert cli_states(home, url, email) == {
            date_ago(2): "pushed",
            date_ago(3): "pushed",
        }, (url, email)
    assert len(dx.requests) == 2


def test_a_journal_written_before_normalizing_keeps_its_days_pushed(home: Path, dx: FakeDx) -> None:
    """Lines written under one spelling (as an earlier build stored the setting verbatim) are
    read under any other."""
    for n in (2, 3):
        done = run_cli(
            home,
            "record",
            "--timestamp",
            days_ago(n),
            "--input-tokens",
            str(n),
            DX_TELEMETRY_TOOL=TOOL,
        )
        assert done.returncode == 0, done.stderr
    cli_flush(home, dx.url, "me@example.com")
    assert len(dx.stored) == 2
    journal = home / "journal.jsonl"
    text = journal.read_text()
    scheme, rest = dx.url.split("://")
    respelled = text.replace(f'"dx:{dx.url}"', f'"dx:{scheme.upper()}://{rest.upper()}"')
    respelled = respelled.replace('"me@example.com"', '"Me@Example.COM"')
    assert respelled != text
    journal.write_text(respelled)

    assert cli_flush(home, dx.url, "me@example.com") == NOTHING
    assert cli_states(home, dx.url, "me@example.com") == {
        date_ago(2): "pushed",
        date_ago(3): "pushed",
    }
    assert len(dx.requests) == 2


def saved_target(home: Path) -> tuple[str, str]:
    """What the sidecar applied last (it saves every change for the CLI)."""
    saved = json.loads((home / "settings.json").read_text())["destination"]
    return saved["instanceUrl"], saved["email"]


def settings_for(url: str, email: str, **extra: Any) -> dict[str, Any]:
    return {**BASE_SETTINGS, "instanceUrl": url, "email": email, **extra}


async def test_editor_settings_in_other_spellings_send_nothing_again(
    home: Path, dx: FakeDx
) -> None:
    """The background push on (delay 0): a changed target starts a cycle, which must find
    nothing to send."""
    async with sidecar(home, settings_for(dx.url, "dev@example.com")) as client:
        for n in (2, 3):
            await client.record(event_id=f"e{n}", timestamp=days_ago(n), input_tokens=n)
        await until(lambda: len(dx.stored) == 2, what="the background push of both days")

        changes = [(u, "dev@example.com") for u in respell(dx.url)]
        changes += [(dx.url, "Dev@Example.com"), (respell(dx.url)[0], "DEV@EXAMPLE.COM")]
        for url, email in changes:
            client.change_settings(settings_for(url, email))
            await until(
                lambda url=url, email=email: saved_target(home) == (url.rstrip("/"), email),
                what=f"the settings {url} {email} to apply",
            )
            assert await client.command(FLUSH_NOW) == NOTHING, (url, email)
            status = await client.status()
            assert status["config"]["ok"], status["config"]
            assert [state_of(status, date_ago(n)) for n in (2, 3)] == ["pushed"] * 2, (url, email)
        assert len(dx.requests) == 2

        # a new day is sent once, under the email as configured now
        await client.record(event_id="e4", timestamp=days_ago(4), input_tokens=4)

        async def pushed_4() -> bool:
            return state_of(await client.status(), date_ago(4)) == "pushed"

        await until_async(pushed_4, what="the backfilled day pushed")
        assert await client.command(FLUSH_NOW) == NOTHING
    assert len(dx.requests) == 3
    assert (dx.stored[-1]["date"], dx.stored[-1]["email"]) == (date_ago(4), "DEV@EXAMPLE.COM")


@pytest.fixture
def dx_on_port_80() -> Iterator[FakeDx]:
    """DX on http's default port, so `http://host` and `http://host:80` really are one server."""
    try:
        server = FakeDx(TEST_TOKEN, host="127.0.0.7", port=80)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.7:80 here ({exc.strerror})")
    with server:
        yield server


async def test_the_default_port_is_the_same_destination(home: Path, dx_on_port_80: FakeDx) -> None:
    dx = dx_on_port_80
    assert dx.url == "http://127.0.0.7:80"
    for n in (2, 3):
        done = run_cli(
            home,
            "record",
            "--timestamp",
            days_ago(n),
            "--input-tokens",
            str(n),
            DX_TELEMETRY_TOOL=TOOL,
        )
        assert done.returncode == 0, done.stderr
    first = await asyncio.to_thread(cli_flush, home, "http://127.0.0.7", "me@example.com")
    assert len(first["pushed"]) == 2 and len(dx.stored) == 2
    for url in ("http://127.0.0.7:80", "HTTP://127.0.0.7:80/", "http://127.0.0.7/"):
        assert await asyncio.to_thread(cli_flush, home, url, "me@example.com") == NOTHING, url
    assert len(dx.requests) == 2
