"""One developer, several hosts: a remote host's reader forwards into the developer's own
sidecar, which alone pushes (real sidecars over stdio, a real HTTP server playing DX); two
physical machines keep their records apart with `machineSuffix`.

The test plays the extension between the two sidecars: what the Remote Reader extension does
with `dxTelemetry/forwardTake`, `dxTelemetry.recordUsage` on the UI side and
`dxTelemetry/forwardDone`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.fake_dx import FakeDx
from tests.harness import (
    BASE_SETTINGS,
    Sidecar,
    date_ago,
    days_ago,
    kill_9,
    run_cli,
    sidecar,
    start_sidecar,
    state_of,
    stop_sidecar,
    until_async,
)
from tests.test_sources_live import claude_line

TAKE, DONE = "dxTelemetry/forwardTake", "dxTelemetry/forwardDone"
INVALID_PARAMS, REQUEST_FAILED = -32602, -32803
#: the reader on a remote host: its user settings carry no email or token (it never pushes)
READER_ARGS = ("serve", "--reader")


def reader_settings(claude: Path) -> dict[str, Any]:
    return {
        "flush": {"delaySeconds": 0},
        "sources": {"claudeCode": {"enabled": True, "path": str(claude)}},
    }


def transcript(claude: Path) -> Path:
    path = claude / "projects" / "-srv-work-proj" / "s1.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def pending(reader: Sidecar, n: int, *, or_more: bool = False) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await reader.status()
        forward = status["forward"]
        waiting = forward["pending"] >= n if or_more else forward["pending"] == n
        return status if forward["state"] == "forwarding" and waiting else None

    what = f"{n}{' or more' if or_more else ''} events waiting to be forwarded"
    status: dict[str, Any] = await until_async(probe, 30, what)
    return status


async def deliver(reader: Sidecar, ui: Sidecar, limit: int | None = None) -> list[dict[str, Any]]:
    """One batch, as the Remote Reader extension forwards it: each event recorded on the UI side
    (`dxTelemetry.recordUsage`), then the count that arrived. Returns the UI side's answers."""
    batch = await reader.request(TAKE, {} if limit is None else {"limit": limit})
    answers = [await ui.record(**event) for event in batch["events"]]
    done = await reader.request(DONE, {"batch": batch["batch"], "delivered": len(answers)})
    assert done["moved"] is True
    return answers


async def test_a_remote_hosts_usage_reaches_the_one_pushing_ledger_exactly_once(
    tmp_path: Path, dx: FakeDx
) -> None:
    claude = tmp_path / "remote-home" / ".claude"
    log = transcript(claude)
    log.write_text(
        claude_line("msg_1", "req_1", days_ago(2, 9), input_tokens=100, output_tokens=5)
        + claude_line("msg_2", "req_2", days_ago(2, 10), input_tokens=20, cache_read_input_tokens=7)
        + claude_line("msg_3", "req_3", days_ago(0, 0), input_tokens=1)
    )
    remote, laptop = tmp_path / "remote-data", tmp_path / "laptop-data"
    ui_settings = {**BASE_SETTINGS, "instanceUrl": dx.url, "flush": {"enabled": False}}
    reader = await start_sidecar(remote, reader_settings(claude), args=READER_ARGS)
    try:
        async with sidecar(laptop, ui_settings) as ui:
            status = await pending(reader, 3)
            # the reader's data lives apart from any ledger this host would push itself
            assert status["dataDir"] == str(remote / "remote-reader")
            assert status["config"] == {"ok": True, "destination": "forward", "problems": []}
            assert status["today"]["tools"]["claude-code"]["input_tokens"] == 1
            assert {d["date"] for d in status["days"]} == {date_ago(0)}  # no push states

            answers = await deliver(reader, ui)
            assert [a["duplicate"] for a in answers] == [False, False, False]
            assert {a["tool"] for a in answers} == {"claude-code"}
            assert (await reader.request(TAKE, {}))["events"] == []
            status = await pending(reader, 0)
            assert status["forward"]["delivered"] == 3 and status["forward"]["lastAt"]

            # a line logged later: only it is forwarded
            with log.open("a") as f:
                f.write(claude_line("msg_4", "req_4", days_ago(2, 11), output_tokens=3))
            await pending(reader, 1)
            batch = await reader.request(TAKE, {})
            assert [e["output_tokens"] for e in batch["events"]] == [3]

            # the window closes after the UI side recorded it, before forwardDone: the event
            # comes again from the restarted reader, and is the same event in the UI's ledger
            first = await ui.record(**batch["events"][0])
            assert first["duplicate"] is False
            await kill_9(reader)
            reader = await start_sidecar(remote, reader_settings(claude), args=READER_ARGS)
            # killed before its source checkpoint was saved, the reader reads the line again
            # into its buffer: one or two copies wait, of one event
            await pending(reader, 1, or_more=True)
            again = await deliver(reader, ui)
            assert {(a["event_id"], a["duplicate"]) for a in again} == {(first["event_id"], True)}
            await pending(reader, 0)

            # only the UI side pushes, and the remote day is in its record exactly once
            with pytest.raises(JsonRpcException) as refused:
                await reader.command("dxTelemetry.flushNow")
            assert refused.value.code == REQUEST_FAILED
            assert "never pushes" in refused.value.message
            result = await ui.command("dxTelemetry.flushNow")
            assert result["pushed"] == [
                {"date": date_ago(2), "tool": "claude-code", "destination": "dx"}
            ]
            claude_day = next(r for r in dx.stored if r["tool"] == "claude-code")
            assert (
                claude_day["input_tokens"],
                claude_day["output_tokens"],
                claude_day["cache_read_tokens"],
                claude_day["metrics"]["events"],
            ) == (120, 8, 7, 3)
    finally:
        await stop_sidecar(reader)
    assert len({(r["email"], r["date"], r["tool"]) for r in dx.stored}) == len(dx.stored)
    assert not (remote / "remote-reader" / "journal.jsonl").exists()  # it never pushed


async def test_the_cursor_moves_past_what_arrived_only_and_the_reason_is_shown(
    tmp_path: Path,
) -> None:
    claude = tmp_path / ".claude"
    transcript(claude).write_text(
        "".join(claude_line(f"m{i}", f"r{i}", days_ago(1, i), input_tokens=i) for i in (1, 2, 3))
    )
    async with (
        sidecar(tmp_path / "remote", reader_settings(claude), args=READER_ARGS) as reader,
        sidecar(tmp_path / "laptop", {**BASE_SETTINGS, "flush": {"enabled": False}}) as ui,
    ):
        await pending(reader, 3)
        batch = await reader.request(TAKE, {"limit": 2})
        assert [e["input_tokens"] for e in batch["events"]] == [1, 2] and batch["more"] is True
        await ui.record(**batch["events"][0])
        problem = "command 'dxTelemetry.recordUsage' not found (DX Telemetry is not installed)"
        done = await reader.request(
            DONE, {"batch": batch["batch"], "delivered": 1, "problem": problem}
        )
        assert done == {"moved": True, "pending": 2}
        status = await reader.status()
        assert problem in status["config"]["problems"] and status["forward"]["problem"] == problem
        assert "forwarding to your own machine failed" in reader.log_text()

        # a batch that is not the last one handed out (a window that restarted) moves nothing
        stale = await reader.request(TAKE, {})
        newer = await reader.request(TAKE, {})
        moved = await reader.request(DONE, {"batch": stale["batch"], "delivered": 2})
        assert moved == {"moved": False, "pending": 2}
        assert [e["input_tokens"] for e in newer["events"]] == [2, 3]
        answers = [await ui.record(**e) for e in newer["events"]]
        await reader.request(DONE, {"batch": newer["batch"], "delivered": len(answers)})
        status = await pending(reader, 0)
        assert status["config"]["problems"] == []  # delivered again: the reason is gone
        ui_days = (await ui.status())["days"]
        assert [d["totals"]["input_tokens"] for d in ui_days if d["tool"] == "claude-code"] == [6]


async def test_a_reader_on_a_host_that_runs_dx_telemetry_itself_forwards_nothing(
    tmp_path: Path,
) -> None:
    claude = tmp_path / ".claude"
    transcript(claude).write_text(claude_line("m1", "r1", days_ago(1), input_tokens=5))
    host = tmp_path / "desktop-data"
    (host / "ledger").mkdir(parents=True)
    (host / "ledger" / f"{date_ago(3)}.jsonl").write_text("")  # its own DX Telemetry ran here
    async with sidecar(host, reader_settings(claude), args=READER_ARGS) as reader:

        async def standing_by() -> dict[str, Any] | None:
            status = await reader.status()
            return status if status["forward"]["state"] == "standby" else None

        status = await until_async(standing_by, 10, "standby")
        assert status["forward"]["pending"] == 0
        assert (await reader.request(TAKE, {}))["events"] == []
        assert status["today"]["tools"] == {}
        assert "forwards nothing" in reader.log_text()
    assert not list((host / "remote-reader" / "ledger").glob("*.jsonl"))  # its logs: not read


BAD_FORWARD: list[tuple[str, Any, str]] = [
    (TAKE, {"limit": 0}, "limit: expected 1 to 500, got 0"),
    (TAKE, {"limit": "ten"}, 'limit: expected 1 to 500, got "ten"'),
    (TAKE, [1], "limit: expected 1 to 500, got [1]"),
    (DONE, None, "params: expected an object with batch and delivered, got null"),
    (DONE, {"delivered": 1}, "batch: expected the batch number forwardTake gave, got null"),
    (DONE, {"batch": 1, "delivered": -1}, "delivered: expected 0 to 500, got -1"),
    (DONE, {"batch": 1, "delivered": True}, "delivered: expected 0 to 500, got true"),
    (
        DONE,
        {"batch": 1, "delivered": 0, "problem": 5},
        "problem: expected null or at most 500 characters of text, got 5",
    ),
]


async def test_bad_forward_requests_are_refused_by_name_and_a_full_sidecar_forwards_nothing(
    tmp_path: Path,
) -> None:
    async with sidecar(tmp_path / "r", {}, args=READER_ARGS) as reader:
        for method, params, message in BAD_FORWARD:
            with pytest.raises(JsonRpcException) as refused:
                await reader.request(method, params)
            assert (refused.value.code, refused.value.message) == (INVALID_PARAMS, message)
        assert (await reader.request(TAKE, {}))["events"] == []  # still serving
    async with sidecar(tmp_path / "u") as full:
        with pytest.raises(JsonRpcException) as refused:
            await full.request(TAKE, {})
        assert refused.value.code == REQUEST_FAILED and "serve --reader" in refused.value.message


async def test_two_machines_of_one_developer_push_apart_with_a_machine_suffix(
    tmp_path: Path, dx: FakeDx
) -> None:
    def machine(suffix: str) -> dict[str, Any]:
        return {**BASE_SETTINGS, "instanceUrl": dx.url, "machineSuffix": suffix}

    async with (
        sidecar(tmp_path / "laptop", machine("laptop")) as laptop,
        sidecar(tmp_path / "desktop", machine("desktop")) as desktop,
    ):
        await laptop.record(event_id="l1", timestamp=days_ago(2), input_tokens=10)
        await desktop.record(event_id="d1", timestamp=days_ago(2), input_tokens=30)
        for client in (laptop, desktop):
            await client.command("dxTelemetry.flushNow")
        status = await laptop.status()
        assert status["config"]["machineSuffix"] == "laptop"
        assert state_of(status, date_ago(2)) == "pushed"  # the ledger's name, in status
    assert sorted((r["tool"], r["input_tokens"]) for r in dx.stored) == [
        ("acme-ai@desktop", 30),
        ("acme-ai@laptop", 10),
    ]
    assert {(r["email"], r["date"]) for r in dx.stored} == {("dev@example.com", date_ago(2))}
    shown = run_cli(tmp_path / "laptop", "status")
    assert "records of this machine are pushed as <tool>@laptop" in shown.stdout, shown.stdout
    dry = run_cli(tmp_path / "laptop", "flush", "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout) == [], dry.stdout


async def test_a_suffix_set_later_never_sends_a_pushed_day_again_and_a_bad_one_is_named(
    home: Path, dx: FakeDx
) -> None:
    settings = {**BASE_SETTINGS, "instanceUrl": dx.url, "flush": {"enabled": False}}
    async with sidecar(home, settings) as client:
        await client.record(event_id="a", timestamp=days_ago(3), input_tokens=1)
        await client.command("dxTelemetry.flushNow")
        client.change_settings({**settings, "machineSuffix": "my laptop!"})

        async def named() -> list[str] | None:
            problems: list[str] = (await client.status())["config"]["problems"]
            return problems or None

        problems = await until_async(named, 10, "the bad suffix named")
        assert problems == [
            "dxTelemetry.machineSuffix: expected 1 to 32 letters, digits, '.', '_' or '-' "
            '(e.g. laptop), a letter or digit first, got "my laptop!"'
        ]
        await client.record(event_id="b", timestamp=days_ago(2), input_tokens=2)
        await client.command("dxTelemetry.flushNow")  # the bad suffix is ignored: plain name
        client.change_settings({**settings, "machineSuffix": "laptop"})

        async def suffixed() -> bool:
            return (await client.status())["config"].get("machineSuffix") == "laptop"

        await until_async(suffixed, 10, "the suffix applied")
        await client.record(event_id="c", timestamp=days_ago(1), input_tokens=3)
        assert (await client.command("dxTelemetry.flushNow"))["pushed"] == [
            {"date": date_ago(1), "tool": "acme-ai", "destination": "dx"}
        ]
    assert [(r["date"], r["tool"]) for r in dx.stored] == [
        (date_ago(3), "acme-ai"),
        (date_ago(2), "acme-ai"),
        (date_ago(1), "acme-ai@laptop"),
    ]
