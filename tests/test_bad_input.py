"""Bad input of every kind, through a real sidecar over stdio: refused precisely, harmless.

- every field rule of `dxTelemetry/recordUsage` answers -32602 naming the field and the value,
  and the sidecar keeps recording valid events (the ledger holds only those);
- malformed settings (initializationOptions and didChangeConfiguration) are named in
  `config.problems` and their defaults are used;
- an unusable data folder is named in the error and in status, and the sidecar keeps answering;
- malformed ledger and journal lines are skipped with a warning, and nothing else is lost.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException

from tests.harness import (
    Sidecar,
    date_ago,
    day_entry,
    days_ago,
    sidecar,
    state_of,
    until,
    until_async,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

RECORD = "dxTelemetry/recordUsage"
INVALID_PARAMS = -32602
TOOL = "acme-ai"
EMAIL = "dev@example.com"
#: no `tool` setting, so "tool missing" is an error; no background push
NO_TOOL_SETTINGS: dict[str, Any] = {"email": EMAIL, "flush": {"enabled": False, "delaySeconds": 0}}
SETTINGS: dict[str, Any] = {**NO_TOOL_SETTINGS, "tool": TOOL}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")


def in_minutes(minutes: int) -> str:
    ts = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return ts.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def bad(params: Any, field: str, shown: str, *, name: str) -> Any:
    """A refused event, the field its error must name, and how the value must appear."""
    return pytest.param(params, field, shown, id=name)


def event(**fields: Any) -> dict[str, Any]:
    """Valid apart from `fields`: a leak into the ledger would show as a `bad-` id."""
    base: dict[str, Any] = {
        "tool": TOOL,
        "event_id": f"bad-{uuid.uuid4()}",
        "timestamp": days_ago(2),
        "input_tokens": 5,
    }
    return {**base, **fields}


def without(key: str, params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != key}


NO_OFFSET = days_ago(2).removesuffix("Z")
#: far enough ahead that it stays refused however long the suite runs after collection
FUTURE = in_minutes(6 * 60)
TOO_OLD = days_ago(9)

BAD_EVENTS = [
    # unknown fields, including keys that are not identifiers
    bad(event(foo=1), "foo", "1", name="unknown-field"),
    bad({**event(), "bad key!": 1}, "bad key!", "1", name="unknown-key-with-space-and-bang"),
    bad({**event(), "input-tokens": 7}, "input-tokens", "7", name="unknown-dashed-key"),
    # tool
    bad(event(tool=""), "tool", '""', name="tool-empty"),
    bad(event(tool="   "), "tool", '"   "', name="tool-blank"),
    bad(event(tool="t" * 101), "tool", '"' + "t" * 60, name="tool-too-long"),
    bad(event(tool=42), "tool", "42", name="tool-not-a-string"),
    bad(
        without("tool", event()),
        "tool",
        "dxTelemetry.tool is not set",
        name="tool-missing-no-setting",
    ),
    # timestamp
    bad(event(timestamp="yesterday"), "timestamp", '"yesterday"', name="timestamp-not-rfc3339"),
    bad(event(timestamp=NO_OFFSET), "timestamp", f'"{NO_OFFSET}"', name="timestamp-no-offset"),
    bad(event(timestamp=date_ago(2)), "timestamp", f'"{date_ago(2)}"', name="timestamp-date-only"),
    bad(event(timestamp=1700000000), "timestamp", "1700000000", name="timestamp-a-number"),
    bad(event(timestamp=FUTURE), "timestamp", f'"{FUTURE}"', name="timestamp-too-far-ahead"),
    bad(event(timestamp=TOO_OLD), "timestamp", f'"{TOO_OLD}"', name="timestamp-before-window"),
    # event_id
    bad(event(event_id="x" * 201), "event_id", '"' + "x" * 60, name="event-id-too-long"),
    bad(event(event_id=""), "event_id", '""', name="event-id-empty"),
    bad(event(event_id=42), "event_id", "42", name="event-id-not-a-string"),
    # model, source
    bad(event(model=5), "model", "5", name="model-not-a-string"),
    bad(event(model=""), "model", '""', name="model-empty"),
    bad(event(source=["api"]), "source", "api", name="source-not-a-string"),
    # token counts: negative, above 10^12, fractional, bool, string
    *[
        bad(event(**{name: value}), name, shown, name=f"{name}-{label}")
        for name in TOKEN_FIELDS
        for value, shown, label in (
            (-1, "-1", "negative"),
            (10**12 + 1, "1000000000001", "above-1e12"),
            (1.5, "1.5", "fraction"),
            (True, "true", "bool"),
            ("12", '"12"', "string"),
        )
    ],
    # spend_cents and cost_usd
    bad(event(spend_cents=-0.5), "spend_cents", "-0.5", name="spend-negative"),
    bad(event(spend_cents=float("nan")), "spend_cents", "nan", name="spend-nan"),
    bad(event(spend_cents=float("inf")), "spend_cents", "inf", name="spend-infinity"),
    bad(event(spend_cents="NaN"), "spend_cents", '"NaN"', name="spend-nan-string"),
    bad(event(spend_cents="1.5"), "spend_cents", '"1.5"', name="spend-string"),
    bad(event(spend_cents=False), "spend_cents", "false", name="spend-bool"),
    bad(event(spend_cents=1e12 + 1), "spend_cents", "1000000000001.0", name="spend-above-1e12"),
    bad(event(cost_usd=1e10 + 1), "cost_usd", "10000000001.0", name="cost-above-1e10"),
    bad(event(cost_usd=-1), "cost_usd", "-1", name="cost-negative"),
    bad(event(cost_usd="0.5"), "cost_usd", '"0.5"', name="cost-string"),
    bad(
        event(spend_cents=1, cost_usd=0.01),
        "cost_usd",
        "give spend_cents or cost_usd, not both",
        name="spend-and-cost",
    ),
    # metrics
    bad(
        event(metrics={f"k{i}": 1 for i in range(33)}),
        "metrics",
        "33 keys",
        name="metrics-33-keys",
    ),
    bad(event(metrics={"bad key": 1}), "metrics", '"bad key"', name="metrics-key-space"),
    bad(event(metrics={"a/b": 1}), "metrics", '"a/b"', name="metrics-key-slash"),
    bad(event(metrics={"": 1}), "metrics", '""', name="metrics-key-empty"),
    bad(event(metrics={"k" * 65: 1}), "metrics", '"' + "k" * 60, name="metrics-key-too-long"),
    bad(event(metrics={"events": 3}), "metrics.events", "3", name="metrics-events-reserved"),
    bad(event(metrics={"x": -1}), "metrics.x", "-1", name="metrics-negative"),
    bad(event(metrics={"x": 2e12}), "metrics.x", "2000000000000.0", name="metrics-above-1e12"),
    bad(event(metrics={"x": True}), "metrics.x", "true", name="metrics-bool"),
    bad(event(metrics={"x": "5"}), "metrics.x", '"5"', name="metrics-string"),
    bad(event(metrics={"x": float("nan")}), "metrics.x", "nan", name="metrics-nan"),
    bad(event(metrics=[1, 2]), "metrics", "[1, 2]", name="metrics-a-list"),
    bad(event(metrics="lots"), "metrics", '"lots"', name="metrics-a-string"),
    # params that are not one event object
    bad([event()], "params", "[{", name="params-a-list"),
    bad([1, 2], "params", "[1, 2]", name="params-a-list-of-numbers"),
    bad("hello", "params", '"hello"', name="params-a-string"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Sidecar, Path]]:
    """One sidecar for the whole table, with no `tool` setting."""
    home = tmp_path_factory.mktemp("bad-events") / "home"
    async with sidecar(home, NO_TOOL_SETTINGS) as client:
        yield client, home


def ledger_lines(home: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((home / "ledger").glob("*.jsonl")):
        lines += [json.loads(raw) for raw in path.read_text().splitlines() if raw.strip()]
    return lines


def usage_ids(home: Path) -> list[str]:
    return [line["event_id"] for line in ledger_lines(home) if line["type"] == "usage"]


@pytest.mark.parametrize(("params", "field", "shown"), BAD_EVENTS)
async def test_a_bad_event_is_refused_naming_field_and_value_and_harms_nothing(
    shared: tuple[Sidecar, Path], params: Any, field: str, shown: str
) -> None:
    client, home = shared
    with pytest.raises(JsonRpcException) as refused:
        await client.request(RECORD, params)
    assert refused.value.code == INVALID_PARAMS
    message = refused.value.message
    assert message.startswith(f"{field}: "), message
    assert shown in message, message

    # the sidecar keeps answering, and a valid event right after is recorded
    good_id = f"good-{uuid.uuid4()}"
    answer = await client.record(
        tool=TOOL, event_id=good_id, timestamp=days_ago(2), input_tokens=1, spend_cents=0.5
    )
    assert answer == {
        "recorded": True,
        "event_id": good_id,
        "date": date_ago(2),
        "tool": TOOL,
        "duplicate": False,
    }
    ids = usage_ids(home)
    assert good_id in ids
    assert all(i.startswith("good-") for i in ids), ids  # no refused event reached the ledger
    status = await client.status()
    entry = day_entry(status, date_ago(2))
    assert entry is not None and entry["totals"]["events"] == len(ids)
    assert not any("Traceback" in line for line in client.stderr_lines)
    assert client.messages == []  # never a pop-up


# -- settings ---------------------------------------------------------------------------

MALFORMED_SETTINGS: dict[str, Any] = {
    "email": EMAIL,
    "tool": TOOL,
    "enabled": "yes",
    "flush": {"enabled": "no", "delaySeconds": 10**9, "backfillDays": -3},
    "dayBoundary": "moon",
    "retentionDays": 1.5,
    "reportInactiveDays": 1,
    "modelBreakdowns": "true",
    "instanceUrl": 42,
    "sources": {"claudeCode": {"enabled": "on", "path": 7}, "codex": "everything"},
    "spend": "lots",
}
#: each malformed key, and how its value must appear in its problem
MALFORMED_NAMED = {
    "dxTelemetry.enabled": '"yes"',
    "dxTelemetry.flush.backfillDays": "-3",
    "dxTelemetry.flush.enabled": '"no"',
    "dxTelemetry.flush.delaySeconds": "1000000000",
    "dxTelemetry.dayBoundary": '"moon"',
    "dxTelemetry.retentionDays": "1.5",
    "dxTelemetry.reportInactiveDays": "1",
    "dxTelemetry.modelBreakdowns": '"true"',
    "dxTelemetry.instanceUrl": "42",
    "dxTelemetry.sources.claudeCode.enabled": '"on"',
    "dxTelemetry.sources.claudeCode.path": "7",
    "dxTelemetry.sources.codex": '"everything"',
    "dxTelemetry.spend": '"lots"',
}
DEFAULTS_SAVED = {
    "enabled": True,
    "email": EMAIL,
    "tool": TOOL,
    "instanceUrl": "",
    "dayBoundary": "utc",
    "flush": {"enabled": True, "delaySeconds": 3600, "backfillDays": 7},
    "reportInactiveDays": True,
    "modelBreakdowns": False,
    "retentionDays": 90,
    "spend": {"estimate": True},
}


def assert_problems_name(problems: list[str], named: dict[str, str]) -> None:
    for key, shown in named.items():
        matching = [p for p in problems if p.startswith(f"{key}: ")]
        assert len(matching) == 1, (key, problems)
        assert shown in matching[0], (key, matching[0])


async def assert_defaults_in_use(client: Sidecar, home: Path) -> None:
    """enabled, backfillDays 7 and dayBoundary utc, seen in what the sidecar does."""
    answer = await client.record(event_id=f"ok-{uuid.uuid4()}", timestamp=days_ago(7, 0, 30))
    assert answer["recorded"] is True and answer["date"] == date_ago(7)  # window of 7, UTC days
    with pytest.raises(JsonRpcException) as refused:
        await client.record(event_id=f"bad-{uuid.uuid4()}", timestamp=days_ago(8, 23, 30))
    assert refused.value.code == INVALID_PARAMS and "backfill window" in refused.value.message
    saved = json.loads((home / "settings.json").read_text())["dxTelemetry"]  # what the CLI uses
    assert {k: saved[k] for k in DEFAULTS_SAVED} == DEFAULTS_SAVED
    assert saved["sources"]["claudeCode"] == {"enabled": False, "tool": "claude-code", "path": ""}


async def test_malformed_initialization_options_are_named_and_defaults_used(home: Path) -> None:
    async with sidecar(home, MALFORMED_SETTINGS) as client:
        status = await client.status()
        assert_problems_name(status["config"]["problems"], MALFORMED_NAMED)
        assert status["config"]["ok"] is False
        assert status["config"]["destination"] == "outbox"  # instanceUrl fell back to ""
        await assert_defaults_in_use(client, home)


async def test_malformed_settings_via_did_change_configuration(home: Path) -> None:
    async with sidecar(home, ["not", "an", "object"]) as client:
        status = await client.status()
        assert_problems_name(
            status["config"]["problems"], {"dxTelemetry": "['not', 'an', 'object']"}
        )
        # the sidecar works on defaults: no tool setting, so the event names its tool
        assert (await client.record(tool=TOOL, input_tokens=1))["recorded"] is True

        client.change_settings("hello")
        await until_async(
            lambda: problems_contain(client, 'dxTelemetry: expected an object of settings, got "'),
            what="the non-object section to be named",
        )

        client.change_settings(MALFORMED_SETTINGS)
        await until_async(
            lambda: problems_contain(client, "dxTelemetry.dayBoundary"),
            what="the malformed settings to be named",
        )
        status = await client.status()
        assert_problems_name(status["config"]["problems"], MALFORMED_NAMED)
        assert not any(p.startswith("dxTelemetry: ") for p in status["config"]["problems"])
        await assert_defaults_in_use(client, home)

        client.change_settings(SETTINGS)  # fixed: no problem is left
        await until_async(lambda: config_ok(client), what="the problems to clear")
        assert (await client.record(input_tokens=1))["tool"] == TOOL


async def problems_contain(client: Sidecar, text: str) -> bool:
    status = await client.status()
    return any(text in p for p in status["config"]["problems"])


async def config_ok(client: Sidecar) -> bool:
    status = await client.status()
    return bool(status["config"]["ok"]) and status["config"]["problems"] == []


# -- an unusable data folder ---------------------------------------------------------------


def home_under_a_file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a folder\n")
    return tmp / "a-file" / "dx-home"


def home_is_a_file(tmp: Path) -> Path:
    (tmp / "dx-home").write_text("not a folder\n")
    return tmp / "dx-home"


def home_read_only(tmp: Path) -> Path:
    home = tmp / "dx-home"
    home.mkdir(mode=0o500)
    return home


@pytest.mark.parametrize(
    "make_home",
    [
        pytest.param(home_under_a_file, id="parent-is-a-file"),
        pytest.param(home_is_a_file, id="home-is-a-file"),
        pytest.param(
            home_read_only,
            id="read-only-folder",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root"),
        ),
    ],
)
async def test_an_unusable_data_folder_is_named_and_the_sidecar_keeps_running(
    tmp_path: Path, make_home: Any
) -> None:
    home = make_home(tmp_path)
    async with sidecar(home, SETTINGS) as client:
        status = await client.status()
        assert status["dataDir"] == str(home)
        assert status["config"]["ok"] is False
        assert any(str(home) in p and "not usable" in p for p in status["config"]["problems"])

        for _ in range(2):  # refused each time, naming the folder; the sidecar stays up
            with pytest.raises(JsonRpcException) as failed:
                await client.record(input_tokens=1, timestamp=days_ago(2))
            assert failed.value.code != INVALID_PARAMS  # the event itself was fine
            assert str(home) in failed.value.message
            assert "not recorded" in failed.value.message

        with pytest.raises(JsonRpcException) as refused:  # validation still answers first
            await client.record(input_tokens=-1)
        assert refused.value.code == INVALID_PARAMS

        status = await client.status()
        assert status["today"]["tools"] == {} and status["days"] == []
        assert client.process.returncode is None
    assert client.messages == []  # never a pop-up


# -- malformed ledger and journal lines ---------------------------------------------------


def usage_line(event_id: str, day_ago: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "usage",
        "event_id": event_id,
        "timestamp": days_ago(day_ago, 9),
        "tool": TOOL,
        **dict.fromkeys(TOKEN_FIELDS, 0),
        "spend_cents": 0,
        "recorded_at": days_ago(day_ago, 10),
        **fields,
    }


def write_lines(path: Path, lines: list[str | dict[str, Any]], tail: str = "") -> list[int]:
    """Write `lines` (text or JSON objects) and a torn `tail`; the byte offset of each line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b""
    offsets = []
    for line in lines:
        offsets.append(len(data))
        text = line if isinstance(line, str) else json.dumps(line)
        data += text.encode() + b"\n"
    path.write_bytes(data + tail.encode())
    return offsets


def warnings_of(client: Sidecar) -> str:
    return client.log_text() + "\n" + "\n".join(client.stderr_lines)


async def test_malformed_ledger_lines_are_skipped_with_a_warning_and_nothing_else_is_lost(
    home: Path,
) -> None:
    ledger = home / "ledger"
    day2 = ledger / f"{date_ago(2)}.jsonl"
    lines: list[str | dict[str, Any]] = [
        usage_line("keep-1", 2, input_tokens=10, spend_cents=0.25),
        "{not json at all",
        "[1, 2, 3]",
        '"just a string"',
        "42",
        "null",
        usage_line("negative", 2, input_tokens=-5),
        usage_line("string-count", 2, output_tokens="many"),
        {k: v for k, v in usage_line("no-id", 2, input_tokens=3).items() if k != "event_id"},
        usage_line("bad-time", 2, timestamp=12345),
        usage_line("bad-metrics", 2, metrics=[1, 2]),
        usage_line("bad-spend", 2, spend_cents="lots"),
        {"type": "weird", "timestamp": days_ago(2)},
        {"type": "session"},
        usage_line("keep-2", 2, output_tokens=7, spend_cents=0.5, metrics={"accepted": 2}),
    ]
    offsets = write_lines(day2, lines, tail='{"type":"usage","event_id":"torn","input_')
    bad_offsets = [offsets[i] for i in range(1, len(lines) - 1)]
    day3 = ledger / f"{date_ago(3)}.jsonl"
    write_lines(day3, ["\x00\x01 binary junk", usage_line("keep-3", 3, cache_read_tokens=4)])

    async with sidecar(home, SETTINGS) as client:
        status = await client.status()
        assert day_entry(status, date_ago(2))["totals"] == {
            "events": 2,
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_write_tokens": 0,
            "cache_read_tokens": 0,
            "spend_cents": 0.75,
        }
        assert day_entry(status, date_ago(3))["totals"]["cache_read_tokens"] == 4
        # one warning per bad line, naming the file, the line and where it starts, once
        await client.status()
        for number, offset in enumerate(bad_offsets, 2):
            named = f"{day2.name} line {number} (byte {offset}): skipped a malformed"
            await until(lambda named=named: named in warnings_of(client), what=named)
            assert client.log_text().count(named) == 1
        await until(lambda: f"{day3.name} line 1 (byte 0): skipped" in warnings_of(client))

        # a new event for that day is recorded whole after the torn line, and counted
        answer = await client.record(event_id="keep-4", timestamp=days_ago(2, 15), input_tokens=1)
        assert answer["duplicate"] is False
        status = await client.status()
        assert day_entry(status, date_ago(2))["totals"]["events"] == 3

        flushed = await client.command("dxTelemetry.flushNow")
        assert {(p["date"], p["destination"]) for p in flushed["pushed"]} == {
            (date_ago(2), "outbox"),
            (date_ago(3), "outbox"),
        }
    record = json.loads((home / "outbox" / f"{date_ago(2)}__{TOOL}.json").read_text())
    assert record["metrics"] == {"events": 3, "accepted": 2}
    assert (record["input_tokens"], record["output_tokens"], record["spend_cents"]) == (11, 7, 1)
    # nothing was rewritten: the bad lines are all still there, the torn one sealed off
    text = day2.read_text()
    assert all((line if isinstance(line, str) else json.dumps(line)) in text for line in lines)
    assert '"event_id":"torn","input_\n' in text


def journal_line(day_ago: int, state: str, **fields: Any) -> dict[str, Any]:
    return {
        "destination": "outbox",
        "email": EMAIL,
        "date": date_ago(day_ago),
        "tool": TOOL,
        "state": state,
        "at": days_ago(day_ago - 1, 0, 20),
        **fields,
    }


async def test_malformed_journal_lines_are_skipped_with_a_warning_and_nothing_else_is_lost(
    home: Path,
) -> None:
    ledger = home / "ledger"
    for n in (2, 3, 4):
        write_lines(ledger / f"{date_ago(n)}.jsonl", [usage_line(f"e{n}", n, input_tokens=n)])
    journal = home / "journal.jsonl"
    lines: list[str | dict[str, Any]] = [
        journal_line(2, "outbox"),  # the one valid line: day 2 is done
        "{garbage",
        "[1]",
        "null",
        '"text"',
        journal_line(3, "teleported"),  # unknown state
        {k: v for k, v in journal_line(3, "pushed").items() if k != "at"},
        journal_line(3, "pushed", cover="everything"),
        journal_line(4, "pushed", attempts="many"),
    ]
    write_lines(journal, lines, tail='{"destination":"outbox","email":"')

    async with sidecar(home, SETTINGS) as client:
        status = await client.status()
        assert state_of(status, date_ago(2)) == "outbox"
        assert state_of(status, date_ago(3)) == "pending"  # its only lines were malformed
        assert state_of(status, date_ago(4)) == "pending"
        for number in range(2, len(lines) + 1):  # 1-based: every line but the first
            await until(
                lambda number=number: (
                    f"journal.jsonl line {number}: skipped a malformed" in warnings_of(client)
                ),
                what=f"a warning for journal line {number}",
            )

        flushed = await client.command("dxTelemetry.flushNow")
        assert flushed == {
            "pushed": [
                {"date": date_ago(4), "tool": TOOL, "destination": "outbox"},
                {"date": date_ago(3), "tool": TOOL, "destination": "outbox"},
            ],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }  # day 2 is not written twice
        status = await client.status()
        assert [state_of(status, date_ago(n)) for n in (2, 3, 4)] == ["outbox"] * 3
    assert not (home / "outbox" / f"{date_ago(2)}__{TOOL}.json").exists()
    text = journal.read_text()
    assert all((line if isinstance(line, str) else json.dumps(line)) in text for line in lines)
