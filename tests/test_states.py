"""One meaning per state, whoever reads it: a real sidecar over LSP stdio and the real CLI as
subprocesses, on one data folder, against a real loopback HTTP server playing DX.

- A refused connection leaves a day `pending` with `retryAt` in `flushNow`, `flush` and every
  status; a 400 leaves it `failed` in all of them.
- A day older than the window that was never pushed is `expired` in the LSP status, `flushNow`,
  `status`, `report` and `flush`, with what to do; `flush --resend` pushes it when asked.
- The same data folder reads the same from a terminal with the editor's environment, without it
  (other folder, no `DX_TELEMETRY_*`), and with other `DX_TELEMETRY_*` values of its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_dx import FakeDx, Script
from tests.harness import (
    TEST_TOKEN,
    Sidecar,
    date_ago,
    day_entry,
    days_ago,
    sidecar,
    sidecar_env,
    state_of,
)

TOOL = "acme-ai"
EMAIL = "dev@example.com"
FLUSH_NOW = "dxTelemetry.flushNow"
RESEND = "dxTelemetry.resendDay"
#: no background push: each test pushes with Flush Now or the CLI, when it chooses
NO_SCHEDULE = {"enabled": False, "delaySeconds": 0}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def cli(
    home: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI; `env`: its whole environment (default: the editor's, as in the tests'
    sidecars, with the token)."""
    return subprocess.run(
        [sys.executable, "-m", "dx_lsp_telemetry", *args],
        env=sidecar_env(home) if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def cli_json(home: Path, *args: str, code: int = 0, **kwargs: Any) -> Any:
    done = cli(home, *args, **kwargs)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def bare_env(home: Path) -> dict[str, str]:
    """A terminal that is not the editor's: no DX_TELEMETRY_* but the data folder, no token.
    PYTHONPATH is kept: it is how this test finds the package (the editor's launcher, too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DX_TELEMETRY_", "DX_DATA"))}
    env["DX_TELEMETRY_HOME"] = str(home)
    return env


def states(days: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(d["date"], d["tool"]): d["state"] for d in days}


def dx_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"email": EMAIL, "tool": TOOL, "instanceUrl": url, "flush": NO_SCHEDULE, **extra}


async def status_entry(client: Sidecar, date: str) -> dict[str, Any]:
    entry = day_entry(await client.status(), date)
    assert entry is not None, date
    return entry


# -- pending and failed --------------------------------------------------------------------


async def test_a_refused_connection_is_pending_in_flush_and_status_everywhere(
    home: Path, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    async with sidecar(home, dx_settings(url)) as client:
        await client.record(event_id="a", timestamp=days_ago(2), input_tokens=5)

        flushed = await client.command(FLUSH_NOW)
        assert flushed["failed"] == [] and flushed["unconfirmed"] == []
        [item] = flushed["pending"]
        assert (item["date"], item["tool"]) == (date_ago(2), TOOL)
        assert "could not reach DX" in item["error"] and item["retryAt"]
        entry = await status_entry(client, date_ago(2))
        assert (entry["state"], entry["retryAt"], entry["error"]) == (
            "pending",
            item["retryAt"],
            item["error"],
        )

        # the CLI's flush tries at once (the user asked), and says the same
        done = cli(home, "flush", "--json")
        assert done.returncode == 1, done.stderr  # nothing was pushed
        report = json.loads(done.stdout)
        assert report["failed"] == [] and [p["date"] for p in report["pending"]] == [date_ago(2)]
        retry_at = report["pending"][0]["retryAt"]
        assert f"pending {date_ago(2)} {TOOL}: could not reach DX" in done.stderr
        assert f"tried again by itself at {retry_at}" in done.stderr
        assert "failed" not in done.stderr

        status = cli_json(home, "status", "--json")
        assert day_entry(status, date_ago(2)) == await status_entry(client, date_ago(2))
        assert state_of(status, date_ago(2)) == "pending"
        assert day_entry(status, date_ago(2))["retryAt"] == retry_at  # type: ignore[index]
        text = cli(home, "status").stdout
        assert f"{date_ago(2)}  {TOOL}" in text and "pending" in text
        assert f"retry at {retry_at}" in text
        report_rows = cli_json(home, "report", "--json")["days"]
        assert states(report_rows)[(date_ago(2), TOOL)] == "pending"


async def test_a_400_is_failed_in_flush_and_status_everywhere(home: Path, dx: FakeDx) -> None:
    async with sidecar(home, dx_settings(dx.url)) as client:
        for n in (3, 2):
            await client.record(event_id=f"e{n}", timestamp=days_ago(n), input_tokens=n)
        refusal = {"ok": False, "error": "invalid_arguments", "message": "tool is unknown"}
        dx.then(*(Script(kind="status", status=400, body=refusal) for _ in range(2)))

        done = cli(home, "flush", "--json")  # the CLI first: both days refused
        assert done.returncode == 1
        report = json.loads(done.stdout)
        assert [(f["date"], f["tool"]) for f in report["failed"]] == [
            (date_ago(3), TOOL),
            (date_ago(2), TOOL),
        ]
        assert report["pending"] == [] and report["unconfirmed"] == []
        assert all("HTTP 400" in f["error"] for f in report["failed"])
        assert f"failed {date_ago(3)} {TOOL}: " in done.stderr
        assert f"flush --mark-pushed {date_ago(3)} --tool {TOOL}" in done.stderr
        for reader in (await client.status(), cli_json(home, "status", "--json")):
            for n in (3, 2):
                entry = day_entry(reader, date_ago(n))
                assert entry is not None and entry["state"] == "failed", reader
                assert "HTTP 400" in entry["error"] and "retryAt" not in entry
        assert states(cli_json(home, "report", "--json")["days"])[(date_ago(2), TOOL)] == "failed"
        text = cli(home, "status").stdout
        assert f"{date_ago(2)} {TOOL} is failed: it is tried again by itself once" in text

        # a changed record is tried again; DX refuses it again: failed in flushNow too
        await client.record(event_id="e2b", timestamp=days_ago(2), input_tokens=1)
        dx.then(Script(kind="status", status=400, body=refusal))
        flushed = await client.command(FLUSH_NOW)
        assert [(f["date"], f["tool"]) for f in flushed["failed"]] == [(date_ago(2), TOOL)]
        assert flushed["pending"] == [] and flushed["pushed"] == []
        assert (await status_entry(client, date_ago(2)))["state"] == "failed"
    assert dx.stored == [] and len(dx.requests) == 3


# -- expired -------------------------------------------------------------------------------


async def test_a_day_ten_days_old_never_pushed_is_expired_everywhere(
    home: Path, dx: FakeDx
) -> None:
    # recorded while the window was 14 days; then the window shrinks to the default 7
    async with sidecar(home, dx_settings(dx.url, flush={**NO_SCHEDULE, "backfillDays": 14})) as c:
        await c.record(event_id="old", timestamp=days_ago(10), input_tokens=10)
        await c.record(event_id="new", timestamp=days_ago(2), input_tokens=2)
    async with sidecar(home, dx_settings(dx.url)) as client:
        old = date_ago(10)
        entry = await status_entry(client, old)  # shown, though outside the window
        assert entry["state"] == "expired" and entry["totals"]["input_tokens"] == 10
        assert (await status_entry(client, date_ago(2)))["state"] == "pending"

        flushed = await client.command(FLUSH_NOW)  # pushes day 2; names day 10, sends nothing
        assert flushed["pushed"] == [{"date": date_ago(2), "tool": TOOL, "destination": "dx"}]
        assert flushed["expired"] == [{"date": old, "tool": TOOL}]
        assert [r["date"] for r in dx.stored] == [date_ago(2)]

        status = cli_json(home, "status", "--json")
        assert state_of(status, old) == "expired"
        assert state_of(status, date_ago(2)) == "pushed"
        text = cli(home, "status").stdout
        assert f"{old}  {TOOL}" in text and "expired" in text
        assert "expired (older than the backfill window, never pushed" in text
        assert f"{old} {TOOL}" in text and "flush --resend DATE --tool TOOL" in text
        assert states(cli_json(home, "report", "--json")["days"])[(old, TOOL)] == "expired"
        report_text = cli(home, "report").stdout
        assert "expired" in report_text.split(old, 1)[1].splitlines()[0]

        done = cli(home, "flush", "--json")
        assert done.returncode == 0, done.stderr  # nothing failed: the day was not tried
        assert json.loads(done.stdout)["expired"] == [{"date": old, "tool": TOOL}]
        assert f"expired {old} {TOOL}: older than the backfill window" in done.stderr
        assert f"`dx-lsp-telemetry flush --resend {old} --tool {TOOL}`" in done.stderr
        assert "pending" not in done.stderr
        assert cli_json(home, "flush", "--dry-run", "--json") == []  # it is never due by itself
        assert len(dx.requests) == 1

        # the user wants it anyway: sent once, pushed everywhere
        resent = await client.command(RESEND, old, TOOL)
        assert resent["pushed"] == [{"date": old, "tool": TOOL, "destination": "dx"}]
        assert [r["date"] for r in dx.stored] == [date_ago(2), old]
        assert (await status_entry(client, old))["state"] == "pushed"
        assert state_of(cli_json(home, "status", "--json"), old) == "pushed"
        assert cli_json(home, "flush", "--json")["expired"] == []
        again = cli(home, "flush", "--resend", old, "--tool", TOOL)
        assert again.returncode == 2 and "never sent twice" in again.stderr
    assert len(dx.requests) == 2


# -- one destination, whoever reads --------------------------------------------------------


@pytest.mark.parametrize("named_by", ["env fallbacks", "a managed file"])
async def test_the_same_data_folder_reads_the_same_with_and_without_the_editors_environment(
    home: Path, dx: FakeDx, tmp_path: Path, named_by: str
) -> None:
    """The editor's sidecar gets its destination from its environment (DX_TELEMETRY_* or a
    managed file only it sees). A terminal without that environment, in another folder, and
    one with DX_TELEMETRY_* of its own, read the same state for every day."""
    managed = tmp_path / "managed.json"
    managed.write_text(json.dumps({"email": "boss@example.com", "instanceUrl": dx.url}))
    if named_by == "env fallbacks":
        extra = {"DX_TELEMETRY_EMAIL": EMAIL, "DX_TELEMETRY_INSTANCE_URL": dx.url}
    else:
        extra = {"DX_TELEMETRY_MANAGED_FILE": str(managed)}
    editor_env = sidecar_env(home, **extra)
    settings = {"tool": TOOL, "flush": {**NO_SCHEDULE, "backfillDays": 14}}
    async with sidecar(home, settings, env=editor_env) as client:
        await client.record(event_id="e10", timestamp=days_ago(10), input_tokens=10)
    settings["flush"] = NO_SCHEDULE  # the default window of 7: day 10 is out of it
    async with sidecar(home, settings, env=editor_env) as client:
        await client.record(event_id="e5", timestamp=days_ago(5), input_tokens=5)
        flushed = await client.command(FLUSH_NOW)
        assert [p["date"] for p in flushed["pushed"]] == [date_ago(5)]
        assert flushed["expired"] == [{"date": date_ago(10), "tool": TOOL}]
        # then day 4 refused (400), day 3 throttled (503: retry later), day 2 not tried
        for n in (4, 3, 2):
            await client.record(event_id=f"e{n}", timestamp=days_ago(n), input_tokens=n)
        dx.then(
            Script(kind="status", status=400),
            Script(kind="status", status=503, headers={"Retry-After": "600"}),
        )
        flushed = await client.command(FLUSH_NOW)
        assert flushed["pushed"] == []
        assert [f["date"] for f in flushed["failed"]] == [date_ago(4)]
        assert [p["date"] for p in flushed["pending"]] == [date_ago(3)]
        lsp = states((await client.status())["days"])

    expected = {
        (date_ago(10), TOOL): "expired",
        (date_ago(5), TOOL): "pushed",
        (date_ago(4), TOOL): "failed",
        (date_ago(3), TOOL): "pending",
        (date_ago(2), TOOL): "pending",
    }
    assert {k: lsp[k] for k in expected} == expected
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    readers = {
        "the editor's environment": {"env": editor_env, "cwd": home.parent},
        "a bare terminal elsewhere": {"env": bare_env(home), "cwd": elsewhere},
        "a terminal of its own": {
            "env": {
                **bare_env(home),
                "DX_TELEMETRY_EMAIL": "someone@else.example",
                "DX_TELEMETRY_INSTANCE_URL": "https://other.getdx.net",
            },
            "cwd": elsewhere,
        },
    }
    seen = {}
    for name, how in readers.items():
        status = cli_json(home, "status", "--json", **how)
        report = cli_json(home, "report", "--json", **how)["days"]
        dry = cli_json(home, "flush", "--dry-run", "--json", **how)
        seen[name] = (states(status["days"]), states(report), dry)
        assert states(status["days"]) == lsp, name
        assert {k: v for k, v in states(report).items() if k in expected} == expected, name
    dry_runs = [dry for _, _, dry in seen.values()]
    assert [r["date"] for r in dry_runs[0]] == [date_ago(3), date_ago(2)]  # 4: the same refusal
    assert all(dry == dry_runs[0] for dry in dry_runs), dry_runs
    sent_as = "boss@example.com" if named_by == "a managed file" else EMAIL
    assert {r["email"] for r in dry_runs[0]} == {sent_as}
    assert len(dx.requests) == 3  # the readers sent nothing


async def test_a_terminal_of_its_own_does_not_move_an_outbox_editors_days(
    home: Path, dx: FakeDx
) -> None:
    """The editor writes to the outbox (no instanceUrl); a terminal whose environment names a
    DX instance reads the editor's states, and its flush pushes nothing to that instance."""
    async with sidecar(home, {"email": EMAIL, "tool": TOOL, "flush": NO_SCHEDULE}) as client:
        await client.record(event_id="a", timestamp=days_ago(2), input_tokens=3)
        assert (await client.command(FLUSH_NOW))["pushed"] == [
            {"date": date_ago(2), "tool": TOOL, "destination": "outbox"}
        ]
    env = {**bare_env(home), "DX_TELEMETRY_INSTANCE_URL": dx.url, "DX_DATA_CLOUD_TOKEN": TEST_TOKEN}
    status = cli_json(home, "status", "--json", env=env)
    assert status["config"]["destination"] == "outbox"
    assert state_of(status, date_ago(2)) == "outbox"
    assert cli_json(home, "flush", "--json", env=env)["pushed"] == []
    assert dx.requests == []
