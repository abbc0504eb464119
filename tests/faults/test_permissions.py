"""Fault injection: file modes and an unusable data folder.

Under a permissive umask (022), everything the product creates in its data folder is its
owner's only: folders 0700, files 0600 (the ledger names models, tools and a person's daily
usage; the journal holds their email). A data folder from an older version is tightened at
start. A data folder that cannot be created or written is named in status and in the error of
`recordUsage`, and the sidecar keeps running.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    cli_json,
    date_ago,
    days_ago,
    run_cli,
    sidecar,
    until,
    until_async,
)
from tests.source_logs import claude_assistant, claude_usage, claude_user, day_start, write_lines

FLUSH_NOW = "dxTelemetry.flushNow"
TOOL = "acme-ai"
SESSION = "3f2a7c1e-5b4d-4e8f-9a6b-0c1d2e3f4a5b"
#: no background push: the test's Flush Now does every push
SETTINGS: dict[str, Any] = {**BASE_SETTINGS, "flush": {"enabled": False, "delaySeconds": 0}}


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default: a file created without a mode is world-readable. Sidecars and
    CLI runs started by the test inherit it."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def loose_paths(root: Path) -> list[str]:
    """Every path under `root` (and `root` itself) that is not owner-only, with its mode."""
    loose = []
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) != want:
            loose.append(f"{path.relative_to(root.parent)}: {stat.S_IMODE(st.st_mode):o}")
    return loose


def claude_logs(root: Path) -> Path:
    """A small Claude Code home: one transcript with one prompt and one response, 3 days ago."""
    t0 = day_start(3) + timedelta(hours=10)
    write_lines(
        root / "projects" / "-home-dev-proj" / f"{SESSION}.jsonl",
        [
            claude_user(t0, SESSION, "hello"),
            claude_assistant(
                t0 + timedelta(seconds=5), SESSION, "msg_1", "req_1", claude_usage(10, 5, 2, 3)
            ),
        ],
    )
    return root


async def test_everything_the_product_creates_is_owner_only(
    home: Path, dx: FakeDx, tmp_path: Path, umask_022: None
) -> None:
    logs = claude_logs(tmp_path / "claude")
    async with sidecar(home, SETTINGS) as client:
        for n in (2, 3):
            await client.record(event_id=f"e{n}", timestamp=days_ago(n), input_tokens=n)
        flushed = await client.command(FLUSH_NOW)
        assert {(p["date"], p["destination"]) for p in flushed["pushed"]} == {
            (date_ago(2), "outbox"),
            (date_ago(3), "outbox"),
        }

        done = await asyncio.to_thread(
            run_cli, home, "scan", "--source", "claude-code", "--path", str(logs)
        )
        assert done.returncode == 0, done.stderr
        assert "1 record read" in done.stdout, done.stdout

        client.change_settings({**SETTINGS, "instanceUrl": dx.url})

        async def to_dx() -> bool:
            return bool((await client.status())["config"]["destination"] == "dx")

        await until_async(to_dx, what="the new instanceUrl to apply")
        flushed = await client.command(FLUSH_NOW)
        assert {(p["tool"], p["destination"]) for p in flushed["pushed"]} == {
            (TOOL, "dx"),
            ("claude-code", "dx"),
        }
        await until(lambda: len(dx.stored) == 3, what="three records at DX")

    # the CLI on its own: a record, a status, a report, a flush with nothing left to push
    recorded = await asyncio.to_thread(cli_json, home, "record", "--input-tokens", "1", "--json")
    assert recorded["recorded"]
    for verb in (("status", "--json"), ("report", "--json"), ("flush",)):
        done = await asyncio.to_thread(run_cli, home, *verb)
        assert done.returncode == 0, done.stderr

    # the session made each kind of file (no list of names is checked below: every path is)
    made = {p.relative_to(home).parts[0] for p in home.rglob("*")}
    assert {"ledger", "outbox", "sources", "journal.jsonl", "settings.json"} <= made, made
    assert any(home.glob("*.lock")) and any((home / "sources").glob("*.lock")), made
    assert len(list(home.rglob("*"))) >= 13
    loose = loose_paths(home)
    assert not loose, "group or world can read:\n" + "\n".join(loose)


async def test_a_data_folder_of_an_older_version_is_tightened_at_start(
    home: Path, umask_022: None
) -> None:
    """Folders 0755 and files 0644, as an older version (or a copy) left them."""
    async with sidecar(home, SETTINGS) as client:
        await client.record(event_id="old", timestamp=days_ago(2), input_tokens=1)
        await client.command(FLUSH_NOW)
    (home / "sources").mkdir(exist_ok=True)
    (home / "sources" / "claude-code.json").write_text('{"version":2,"files":{}}')
    (home / "sources" / "claude-code.lock").touch()
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert len(loose_paths(home)) >= 10

    async with sidecar(home, SETTINGS) as client:
        await client.status()  # answered once the sidecar has started
        loose = loose_paths(home)
        assert not loose, "still loose:\n" + "\n".join(loose)


# -- an unusable data folder ----------------------------------------------------------------


def home_under_a_file(tmp: Path) -> tuple[Path, list[str]]:
    """Root-proof: no one can make a folder inside a regular file."""
    (tmp / "a-file").write_text("not a folder\n")
    return tmp / "a-file" / "dx-home", []


def home_on_a_read_only_mount(tmp: Path) -> tuple[Path, list[str]]:
    """Root-proof too: a read-only bind mount of an existing folder, in the sidecar's own mount
    namespace (chmod 000 would not stop root, which CI runs as)."""
    home = tmp / "dx-home"
    home.mkdir(mode=0o700)
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    wrapper = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(home)]
    probe = (
        subprocess.run(
            [*wrapper, "sh", "-c", 'touch "$0/probe"', str(home)], capture_output=True, text=True
        )
        if shutil.which("unshare")
        else None
    )
    if probe is None or "Read-only file system" not in probe.stderr:
        pytest.skip(f"no private read-only mount here: {probe.stderr if probe else 'no unshare'}")
    return home, wrapper


@pytest.mark.parametrize(
    "make_home",
    [
        pytest.param(home_under_a_file, id="under-a-regular-file"),
        pytest.param(home_on_a_read_only_mount, id="read-only-mount"),
    ],
)
async def test_an_unusable_data_folder_is_named_and_the_sidecar_keeps_running(
    tmp_path: Path, make_home: Any
) -> None:
    home, wrapper = make_home(tmp_path)
    async with sidecar(home, SETTINGS, wrapper=wrapper) as client:
        status = await client.status()
        problems = status["config"]["problems"]
        assert status["config"]["ok"] is False
        assert any(str(home) in p and "not usable" in p for p in problems), problems
        for _ in range(2):  # refused each time, naming the folder
            with pytest.raises(JsonRpcException) as failed:
                await client.record(input_tokens=1, timestamp=days_ago(2))
            assert "not recorded" in failed.value.message, failed.value.message
            assert str(home) in failed.value.message, failed.value.message
        assert (await client.status())["config"]["problems"] == problems
        assert client.process.returncode is None
        assert not any("Traceback" in line for line in client.stderr_lines)
    assert not home.exists() or list(home.iterdir()) == []
    assert client.messages == []  # never a pop-up
