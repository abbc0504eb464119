"""The managed configuration in real sidecars over LSP stdio and in the real CLI: it wins over the
editor's settings and the env fallbacks, every window follows a change of it, status shows what is
managed and from where, the log says once what it overrides, and a bad file is a problem in status
while the sidecar carries on with the rest. The file is given by DX_TELEMETRY_MANAGED_FILE, which
adds a source after the machine's own (`/etc/dx-lsp-telemetry/managed.json` here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    TEST_TOKEN,
    Sidecar,
    all_files_text,
    date_ago,
    days_ago,
    run_cli,
    sidecar,
    sidecar_env,
    until,
    until_async,
)

SECRET = "managed-secret-5f4dcc3b5aa7"
pytestmark = pytest.mark.skipif(
    Path("/etc/dx-lsp-telemetry/managed.json").exists(),
    reason="this machine has a managed configuration of its own, which would win",
)


def write(path: Path, document: Any) -> None:
    """Replace the file whole, as an admin's tooling would (a new inode, so a new signature)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(document if isinstance(document, str) else json.dumps(document))
    os.replace(tmp, path)


def env_with(home: Path, managed: Path, **extra: str) -> dict[str, str]:
    return sidecar_env(home, DX_TELEMETRY_MANAGED_FILE=str(managed), **extra)


def managed_values(status: dict[str, Any]) -> dict[str, Any]:
    block = status["config"].get("managed", {})
    return {k: v["value"] for k, v in block.get("values", {}).items()}


def log_of(client: Sidecar) -> str:
    return client.log_text() + "\n" + "\n".join(client.stderr_lines)


async def test_every_window_follows_the_managed_file_over_its_own_settings(
    home: Path, tmp_path: Path
) -> None:
    managed = tmp_path / "managed.json"
    write(managed, {"enabled": False})
    user = {**BASE_SETTINGS, "enabled": True, "dayBoundary": "utc"}
    env = env_with(home, managed)
    async with sidecar(home, user, env=env) as one, sidecar(home, user, env=env) as two:
        for client in (one, two):
            answer = await client.record(event_id=f"off-{client.pid}", input_tokens=5)
            assert answer["recorded"] is False
            status = await client.status()
            assert status["config"]["destination"] == "off"
            assert status["config"]["managed"] == {
                "lookedIn": ["/etc/dx-lsp-telemetry/managed.json", str(managed)],
                "found": [str(managed)],
                "values": {"enabled": {"value": False, "from": str(managed)}},
                "overrides": ["enabled"],
            }
            await until(lambda c=client: "override the editor's dxTelemetry.enabled" in log_of(c))

        write(managed, {"enabled": True, "dayBoundary": "local", "flush": {"delaySeconds": 7}})
        for client in (one, two):  # each looks at most every few seconds
            await until_async(
                lambda c=client: _has(c, {"enabled": True, "dayBoundary": "local"}),
                timeout=15,
                what="the new managed values",
            )
            answer = await client.record(event_id=f"on-{client.pid}", input_tokens=5)
            assert answer["recorded"] is True
            overrides = (await client.status())["config"]["managed"]["overrides"]
            assert overrides == ["dayBoundary", "flush.delaySeconds"]

        # once per change: the same settings again say nothing; a change of them says it anew
        said = "override the editor's dxTelemetry.dayBoundary, dxTelemetry.flush.delaySeconds"
        await until(lambda: said in one.log_text(), what=said)
        one.change_settings(user)
        one.change_settings({**user, "dayBoundary": "local"})  # now the same as the managed one
        later = "override the editor's dxTelemetry.flush.delaySeconds"
        await until(lambda: f"{later}\n" in one.log_text() + "\n", what=later)
        assert one.log_text().count(said) == 1  # the log is in order: nothing came between
        stderr = "\n".join(one.stderr_lines)  # what came before `initialize` was answered too
        assert stderr.count("override the editor's dxTelemetry.enabled") == 1

        managed.unlink()
        await until_async(lambda: _has(two, None), timeout=15, what="managed settings gone")
        await until(lambda: "no managed settings any more" in log_of(two))
        assert (await two.status())["config"]["destination"] == "outbox"


async def _has(client: Sidecar, expected: dict[str, Any] | None) -> bool:
    status = await client.status()
    if expected is None:
        return "managed" not in status["config"]
    return managed_values(status).items() >= expected.items()


async def test_managed_values_beat_user_settings_and_env_fallbacks_in_a_real_push(
    home: Path, tmp_path: Path, dx: FakeDx
) -> None:
    managed = tmp_path / "managed.json"
    write(
        managed,
        {"email": "boss@example.com", "instanceUrl": dx.url, "flush": {"delaySeconds": 0}},
    )
    user = {"email": "me@example.com", "tool": "", "flush": {"delaySeconds": 86400}}
    env = env_with(
        home, managed, DX_TELEMETRY_EMAIL="env@example.com", DX_TELEMETRY_TOOL="env-tool"
    )
    async with sidecar(home, user, env=env) as client:
        answer = await client.record(event_id="e1", timestamp=days_ago(2), input_tokens=40)
        assert answer["tool"] == "env-tool"  # nobody set the tool: the env fallback
        # the managed delay of 0, not the user's day: pushed at once, as the managed email
        await until(lambda: dx.stored, timeout=15, what="the push")
        assert [(r["email"], r["tool"], r["date"]) for r in dx.stored] == [
            ("boss@example.com", "env-tool", date_ago(2))
        ]
    # the CLI gets the editor's own values; it applies the managed file itself. The
    # destination is the one this window used, so a CLI without the managed file reads the
    # states of the days it pushed
    saved = json.loads((home / "settings.json").read_text())
    section = saved["dxTelemetry"]
    assert (section["email"], section["flush"]["delaySeconds"]) == ("me@example.com", 86400)
    assert saved["destination"] == {"instanceUrl": dx.url, "email": "boss@example.com"}


async def test_a_bad_managed_file_is_a_problem_in_status_and_the_rest_applies(
    home: Path, tmp_path: Path
) -> None:
    managed = tmp_path / "managed.json"
    write(managed, '{"enabled": false,')
    env = env_with(home, managed)
    async with sidecar(home, BASE_SETTINGS, env=env) as client:
        status = await client.status()
        assert status["config"]["ok"] is False
        assert any(
            p.startswith(f"{managed}: is not valid JSON") and p.endswith("user settings apply")
            for p in status["config"]["problems"]
        ), status["config"]["problems"]
        assert (await client.record(event_id="a", input_tokens=1))["recorded"] is True
        await until(
            lambda: f"managed setting ignored: {managed}: is not valid JSON" in log_of(client)
        )

        write(
            managed,
            {
                "token": SECRET,
                "flush": {"delaySeconds": "soon", "backfillDays": 3},
                "dayBoundary": 5,
                "tool": "managed-tool",
            },
        )
        await until_async(lambda: _has(client, {"tool": "managed-tool"}), timeout=15)
        status = await client.status()
        assert managed_values(status) == {"flush.backfillDays": 3, "tool": "managed-tool"}
        problems = [p for p in status["config"]["problems"] if p.startswith(str(managed))]
        assert sorted(p[len(str(managed)) + 2 :] for p in problems) == [
            '"token" refused: the API token is never read from the managed configuration (it '
            "comes from the editor's secret storage or DX_DATA_CLOUD_TOKEN); remove it from there",
            'dayBoundary: expected "utc" or "local", got 5',
            'flush.delaySeconds: expected an integer from 0 to 86400, got "soon"',
        ]
        answer = await client.record(event_id="b", input_tokens=1)
        assert answer["tool"] == "managed-tool"

        managed.unlink()
        managed.mkdir()  # unreadable as a file, even for root
        await until_async(
            lambda: _problem(client, f"{managed}: cannot be read ("), timeout=15, what="unreadable"
        )
        assert (await client.record(event_id="c", input_tokens=1))["tool"] == "acme-ai"
        assert SECRET not in log_of(client) + json.dumps(await client.status())
    assert SECRET not in all_files_text(home)


async def _problem(client: Sidecar, start: str) -> bool:
    status = await client.status()
    return any(p.startswith(start) for p in status["config"]["problems"])


def test_the_cli_reads_the_managed_file_too(home: Path, tmp_path: Path, dx: FakeDx) -> None:
    managed = tmp_path / "managed.json"
    write(managed, {"enabled": False})
    env = {
        "DX_TELEMETRY_MANAGED_FILE": str(managed),
        "DX_TELEMETRY_EMAIL": "env@example.com",
        "DX_TELEMETRY_TOOL": "acme-ai",
    }
    refused = run_cli(home, "record", "--input-tokens", "3", **env)
    assert refused.returncode == 2 and "enabled is off" in refused.stderr

    write(managed, {"email": "boss@example.com", "instanceUrl": dx.url, "retentionDays": "x"})
    done = run_cli(home, "record", "--timestamp", days_ago(2), "--input-tokens", "3", **env)
    assert done.returncode == 0, done.stderr

    status = json.loads(run_cli(home, "status", "--json", **env).stdout)
    managed_block = status["config"]["managed"]
    assert managed_block["values"]["email"] == {"value": "boss@example.com", "from": str(managed)}
    assert managed_block["overrides"] == []  # no editor settings saved
    assert f"{managed}: retentionDays: expected an integer" in "\n".join(
        status["config"]["problems"]
    )
    text = run_cli(home, "status", **env).stdout
    assert "managed settings (set for this machine; your own settings cannot change them):" in text
    assert f'  email = "boss@example.com"  from {managed}' in text

    flushed = run_cli(home, "flush", **env)
    assert flushed.returncode == 0, flushed.stderr
    assert f"warning: {managed}: retentionDays" in flushed.stderr
    assert [(r["email"], r["date"]) for r in dx.stored] == [("boss@example.com", date_ago(2))]
    assert dx.requests[-1].headers["authorization"] == f"Bearer {TEST_TOKEN}"
