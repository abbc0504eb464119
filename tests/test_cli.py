"""The CLI of README.md ("The command line"), run as real subprocesses (`python -m
dx_lsp_telemetry VERB` and the `dx-lsp-telemetry` console script) on real data folders, pushing
to a real HTTP server playing DX.
Also unit tests of `parse_settings`: env fallbacks, dotted and nested keys, instanceUrl rules.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.push.config import blocking_problems
from dx_lsp_telemetry.settings.settings import Settings, parse_settings
from tests.fake_dx import FakeDx, Script
from tests.harness import (
    TEST_TOKEN,
    date_ago,
    day_entry,
    days_ago,
    run_cli,
    sidecar,
    sidecar_env,
    state_of,
)

TOOL = "acme-ai"
EMAIL = "dev@example.com"
SCRIPT = Path(sys.executable).parent / "dx-lsp-telemetry"
EXIT_OK, EXIT_PUSH_FAILED, EXIT_USAGE = 0, 1, 2
TOTALS_KEYS = {
    "events",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "spend_cents",
}
STATES = {"open", "pending", "pushed", "outbox", "failed", "unconfirmed"}
#: the env fallbacks for a user who has no editor settings
OUTBOX_ENV = {"DX_TELEMETRY_EMAIL": EMAIL, "DX_TELEMETRY_TOOL": TOOL}


def run_script(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The `dx-lsp-telemetry` console script of the venv."""
    return subprocess.run(
        [str(SCRIPT), *args],
        env=sidecar_env(home, **env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == EXIT_OK, done.stderr
    return json.loads(done.stdout)


def record(home: Path, *args: str, **env: str) -> dict[str, Any]:
    """`record ARGS --json` (a bare `--json` after `--json EVENT` is the same option again)."""
    json_args = args if "--json" in args else (*args, "--json")
    result: dict[str, Any] = ok_json(run_cli(home, "record", *json_args, **env))
    return result


def record_at(home: Path, timestamp: str, options: str, **env: str) -> dict[str, Any]:
    """`record --timestamp TS` plus space-separated `options`."""
    return record(home, "--timestamp", timestamp, *options.split(), **env)


def totals(events: int = 0, spend: float = 0.0, **tokens: int) -> dict[str, Any]:
    base: dict[str, Any] = {"events": events, **dict.fromkeys(sorted(TOTALS_KEYS - {"events"}), 0)}
    return {**base, **tokens, "spend_cents": spend}


def dx_record(day: str, *, events: int, spend: int, metrics: Any = None, **tokens: int) -> Any:
    return {
        "email": EMAIL,
        "date": day,
        "is_active": True,
        "tool": TOOL,
        "metrics": {"events": events, **(metrics or {})},
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_write_tokens": 0,
        "cache_read_tokens": 0,
        **tokens,
        "spend_cents": spend,
    }


def assert_status_shape(status: dict[str, Any], home: Path) -> None:
    """The dxTelemetry/status object (README.md, "The LSP interface")."""
    assert set(status) == {"version", "dataDir", "leader", "config", "today", "days"}
    assert status["version"] == __version__
    assert status["dataDir"] == str(home)
    assert status["leader"] is False  # the CLI never holds the leader lock
    config = status["config"]
    assert set(config) == {"ok", "destination", "problems"}
    assert isinstance(config["ok"], bool) and isinstance(config["problems"], list)
    assert config["destination"] in ("dx", "outbox", "off")
    assert set(status["today"]) == {"date", "tools"}
    assert status["today"]["date"] == date_ago(0)
    for tool_totals in status["today"]["tools"].values():
        assert set(tool_totals) == TOTALS_KEYS
    dates = [d["date"] for d in status["days"]]
    assert dates == sorted(dates, reverse=True)  # newest first
    for day in status["days"]:
        assert {"date", "tool", "state", "totals"} <= set(day)
        assert set(day) <= {
            "date",
            "tool",
            "state",
            "totals",
            "late",
            "error",
            "pushedAt",
            "retryAt",
        }
        assert day["state"] in STATES
        assert set(day["totals"]) == TOTALS_KEYS


def report_json(home: Path, *args: str, **env: str) -> dict[str, Any]:
    """`report --json`, checked for its shape, reduced to the keys scripts may rely on."""
    report = ok_json(run_cli(home, "report", *args, "--json", **env))
    assert set(report) == {"days"}
    dates = [d["date"] for d in report["days"]]
    assert dates == sorted(dates, reverse=True)  # newest first
    for day in report["days"]:
        assert {"date", "tool", "state", "totals"} <= set(day)
        assert set(day) <= {"date", "tool", "state", "totals", "pushedAt", "error", "retryAt"}
        assert set(day["totals"]) == TOTALS_KEYS  # no separate `late`: it is in the totals
    keys = ("date", "tool", "state", "totals")
    return {"days": [{k: day[k] for k in keys} for day in report["days"]]}


# -- record, status, report ----------------------------------------------------------------


def test_record_status_report_and_dry_run(home: Path, dx: FakeDx) -> None:
    env = {"DX_TELEMETRY_EMAIL": EMAIL}  # no tool setting: events name theirs
    answer = record(
        home,
        *("--tool", TOOL, "--timestamp", days_ago(2, 9), "--event-id", "r1"),
        *("--model", "model-a", "--source", "api"),
        *("--input-tokens", "100", "--output-tokens", "20"),
        *("--cache-write-tokens", "3", "--cache-read-tokens", "400", "--spend-cents", "1.25"),
        *("--metric", "accepted=2", "--metric", "lines.added=10.5"),
        **env,
    )
    assert answer == {
        "recorded": True,
        "event_id": "r1",
        "date": date_ago(2),
        "tool": TOOL,
        "duplicate": False,
    }
    event = {
        "tool": TOOL,
        "event_id": "r2",
        "timestamp": days_ago(2, 10),
        "input_tokens": 1,
        "cost_usd": 0.0325,  # 3.25 cents
        "metrics": {"accepted": 1},
    }
    assert record(home, "--json", json.dumps(event), **env)["duplicate"] is False
    # a smaller version of r1, on another day (another ledger file): a duplicate that loses
    again = record(
        home,
        *("--tool", TOOL, "--timestamp", days_ago(3), "--event-id", "r1", "--input-tokens", "9"),
    )
    assert again["duplicate"] is True
    # the console script, with the tool from DX_TELEMETRY_TOOL
    today = ok_json(
        run_script(home, "record", "--input-tokens", "7", "--json", DX_TELEMETRY_TOOL=TOOL)
    )
    assert (today["date"], today["tool"], today["recorded"]) == (date_ago(0), TOOL, True)

    status = ok_json(run_cli(home, "status", "--json", DX_TELEMETRY_TOOL=TOOL, **env))
    assert_status_shape(status, home)
    assert status["config"] == {"ok": True, "destination": "outbox", "problems": []}
    assert status["today"]["tools"] == {TOOL: totals(1, input_tokens=7)}
    day2 = totals(
        2, 4.5, input_tokens=101, output_tokens=20, cache_write_tokens=3, cache_read_tokens=400
    )
    assert [(d["date"], d["state"], d["totals"]) for d in status["days"]] == [
        (date_ago(0), "open", totals(1, input_tokens=7)),
        (date_ago(2), "pending", day2),
    ]
    text = run_cli(home, "status", **env)
    assert text.returncode == EXIT_OK
    assert "destination: outbox" in text.stdout and str(home) in text.stdout
    assert re.search(rf"{date_ago(2)}\s+{TOOL}\s+pending\s+524 tokens", text.stdout), text.stdout

    report = report_json(home)
    assert report == {
        "days": [
            {
                "date": date_ago(0),
                "tool": TOOL,
                "state": "open",
                "totals": totals(1, input_tokens=7),
            },
            {"date": date_ago(2), "tool": TOOL, "state": "pending", "totals": day2},
        ]
    }
    text = run_cli(home, "report")
    assert text.returncode == EXIT_OK
    assert re.search(rf"{date_ago(2)}\s+{TOOL}\s+524\s+\$\d+\.\d\d\s+pending\s+█+", text.stdout)

    # --dry-run prints what would be sent (spend 4.5 rounds half up to 5), and sends nothing
    dry = run_cli(
        home,
        *("flush", "--dry-run", "--json"),
        **{"DX_TELEMETRY_INSTANCE_URL": dx.url, "DX_TELEMETRY_TOOL": TOOL, **env},
    )
    assert ok_json(dry) == [
        dx_record(
            date_ago(2),
            events=2,
            spend=5,
            metrics={"accepted": 3, "lines.added": 10.5},
            input_tokens=101,
            output_tokens=20,
            cache_write_tokens=3,
            cache_read_tokens=400,
        )
    ]
    assert dx.requests == []
    assert not (home / "journal.jsonl").exists()
    assert list((home / "outbox").glob("*.json")) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--input-tokens", "-5"], ["--input-tokens", "-5"], id="negative-tokens"),
        pytest.param(["--output-tokens", "1.5"], ["--output-tokens", "1.5"], id="fraction-tokens"),
        pytest.param(["--cache-read-tokens", "lots"], ["--cache-read-tokens", "lots"], id="nan"),
        pytest.param(["--timestamp", "yesterday"], ["--timestamp", "yesterday"], id="timestamp"),
        pytest.param(["--timestamp", days_ago(9)], ["--timestamp", days_ago(9)], id="too-old"),
        pytest.param(["--cost-usd", "NaN"], ["--cost-usd", "nan"], id="cost-nan"),
        pytest.param(
            ["--spend-cents", "1", "--cost-usd", "0.01"], ["--cost-usd", "--spend-cents"], id="both"
        ),
        pytest.param(["--metric", "events=3"], ["--metric events", "3"], id="metric-reserved"),
        pytest.param(["--metric", "accepted"], ["--metric", "accepted"], id="metric-no-value"),
        pytest.param(["--json", '{"bad key!": 1}'], ["bad key!", "1"], id="json-unknown-key"),
        pytest.param(["--json", "[1, 2]"], ["--json", "[1, 2]"], id="json-not-an-object"),
        pytest.param(["--tool", ""], ["--tool", '""'], id="empty-tool"),
    ],
)
def test_record_refuses_bad_values_with_exit_2_naming_the_field(
    home: Path, args: list[str], named: list[str]
) -> None:
    done = run_cli(home, "record", *args, DX_TELEMETRY_TOOL=TOOL)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stdout == ""
    for text in named:
        assert text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not list(home.glob("ledger/*.jsonl"))  # nothing recorded


def test_record_without_any_tool_exits_2_naming_the_tool(home: Path) -> None:
    done = run_cli(home, "record", "--input-tokens", "1")  # no --tool, no env, no settings
    assert done.returncode == EXIT_USAGE
    assert "--tool: not given, and DX_TELEMETRY_TOOL is not set" in done.stderr, done.stderr
    assert not list(home.glob("ledger/*.jsonl"))


# -- flush ---------------------------------------------------------------------------------


def test_flush_to_the_outbox_late_events_and_report_days(home: Path) -> None:
    record_at(home, days_ago(2), "--event-id e2 --input-tokens 10 --spend-cents 0.5", **OUTBOX_ENV)
    record_at(home, days_ago(3), "--event-id e3 --output-tokens 20", **OUTBOX_ENV)
    record_at(home, days_ago(5), "--event-id e5 --cache-read-tokens 30", **OUTBOX_ENV)

    flushed = ok_json(run_cli(home, "flush", "--json", **OUTBOX_ENV))
    assert flushed == {
        "pushed": [{"date": date_ago(n), "tool": TOOL, "destination": "outbox"} for n in (5, 3, 2)],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }
    outbox = home / "outbox" / f"{date_ago(2)}__{TOOL}.json"
    expected = dx_record(date_ago(2), events=1, spend=1, input_tokens=10)  # 0.5 rounds half up
    assert json.loads(outbox.read_text()) == expected

    again = run_cli(home, "flush", "--json", **OUTBOX_ENV)
    assert json.loads(again.stdout) == {
        "pushed": [],
        "failed": [],
        "pending": [],
        "unconfirmed": [],
        "expired": [],
    }
    assert again.returncode == EXIT_OK and "nothing to push" in again.stderr

    late = record_at(home, days_ago(2, 15), "--event-id late --input-tokens 5", **OUTBOX_ENV)
    assert late["date"] == date_ago(2)
    status = ok_json(run_cli(home, "status", "--json", **OUTBOX_ENV))
    day2 = day_entry(status, date_ago(2))
    assert day2 is not None and day2["state"] == "outbox" and "pushedAt" in day2
    assert day2["totals"] == totals(1, 0.5, input_tokens=10)  # what was pushed
    assert day2["late"] == totals(1, input_tokens=5)  # arrived afterwards, not pushed

    report = report_json(home, "--days", "4", **OUTBOX_ENV)
    assert report == {  # today .. 3 days ago: day 5 is left out; late events are included
        "days": [
            {
                "date": date_ago(2),
                "tool": TOOL,
                "state": "outbox",
                "totals": totals(2, 0.5, input_tokens=15),
            },
            {
                "date": date_ago(3),
                "tool": TOOL,
                "state": "outbox",
                "totals": totals(1, output_tokens=20),
            },
        ]
    }
    assert json.loads(outbox.read_text()) == expected  # never written twice

    bad = run_cli(home, "report", "--days", "0")
    assert bad.returncode == EXIT_USAGE and "--days" in bad.stderr


def test_flush_to_dx_with_env_fallbacks_and_its_exit_codes(home: Path, dx: FakeDx) -> None:
    record_at(home, days_ago(2), f"--tool {TOOL} --event-id a --input-tokens 100 --spend-cents 0.5")
    record_at(home, days_ago(3), f"--tool {TOOL} --event-id b --output-tokens 3 --spend-cents 0.49")
    env = {**OUTBOX_ENV, "DX_TELEMETRY_INSTANCE_URL": dx.url}

    plain = run_cli(home, "flush", **{**env, "DX_TELEMETRY_INSTANCE_URL": "http://example.com"})
    assert plain.returncode == EXIT_USAGE  # the token would travel in clear text
    assert "DX_TELEMETRY_INSTANCE_URL: plain http://" in plain.stderr, plain.stderr
    assert "http://example.com" in plain.stderr

    no_token = run_cli(home, "flush", token=None, **env)
    assert no_token.returncode == EXIT_USAGE and "DX_DATA_CLOUD_TOKEN" in no_token.stderr
    assert dx.requests == []

    refused = run_cli(home, "flush", "--json", token="wrong-token", **env)
    assert refused.returncode == EXIT_PUSH_FAILED
    assert [f["date"] for f in json.loads(refused.stdout)["failed"]] == [date_ago(3)]
    assert "wrong-token" not in refused.stdout + refused.stderr
    assert dx.stored == []

    flushed = ok_json(run_cli(home, "flush", "--json", **env))
    assert flushed["pushed"] == [
        {"date": date_ago(n), "tool": TOOL, "destination": "dx"} for n in (3, 2)
    ]
    assert dx.stored == [
        dx_record(date_ago(3), events=1, spend=0, output_tokens=3),
        dx_record(date_ago(2), events=1, spend=1, input_tokens=100),
    ]
    assert dx.requests[-1].headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert ok_json(run_cli(home, "flush", "--json", **env))["pushed"] == []
    assert len(dx.stored) == 2


def test_unconfirmed_days_resend_and_mark_pushed(home: Path, dx: FakeDx) -> None:
    env = {**OUTBOX_ENV, "DX_TELEMETRY_INSTANCE_URL": dx.url}
    for n in (2, 3):
        record_at(home, days_ago(n), f"--event-id e{n} --input-tokens {n}", **env)
    dx.then(Script(kind="status", status=500), Script(kind="status", status=500))

    first = run_cli(home, "flush", "--json", **env)
    assert first.returncode == EXIT_PUSH_FAILED
    assert json.loads(first.stdout)["unconfirmed"] == [{"date": date_ago(3), "tool": TOOL}]
    assert f"flush --resend {date_ago(3)} --tool {TOOL}" in first.stderr
    # day 3 is not re-sent by itself; day 2 is tried
    second = run_cli(home, "flush", "--json", **env)
    assert second.returncode == EXIT_PUSH_FAILED
    assert json.loads(second.stdout)["unconfirmed"] == [{"date": date_ago(2), "tool": TOOL}]
    assert len(dx.requests) == 2 and dx.stored == []

    no_tool = run_cli(home, "flush", "--resend", date_ago(3), **env)
    assert no_tool.returncode == EXIT_USAGE and "--tool" in no_tool.stderr

    resent = ok_json(
        run_cli(home, "flush", "--resend", date_ago(3), "--tool", TOOL, "--json", **env)
    )
    assert resent["pushed"] == [{"date": date_ago(3), "tool": TOOL, "destination": "dx"}]
    assert dx.stored == [dx_record(date_ago(3), events=1, spend=0, input_tokens=3)]

    marked = ok_json(
        run_cli(home, "flush", "--mark-pushed", date_ago(2), "--tool", TOOL, "--json", **env)
    )
    assert marked == {"date": date_ago(2), "tool": TOOL, "state": "pushed"}

    # both days are final now: asking again is a usage error, and nothing is sent
    for verb in ("--resend", "--mark-pushed"):
        for n in (2, 3):
            done = run_cli(home, "flush", verb, date_ago(n), "--tool", TOOL, **env)
            assert done.returncode == EXIT_USAGE, (verb, n, done.stderr)
            assert date_ago(n) in done.stderr
    assert ok_json(run_cli(home, "flush", "--json", **env))["pushed"] == []
    status = ok_json(run_cli(home, "status", "--json", **env))
    assert [state_of(status, date_ago(n)) for n in (2, 3)] == ["pushed", "pushed"]
    assert len(dx.requests) == 3 and len(dx.stored) == 1


async def test_the_cli_uses_the_settings_a_sidecar_saved(home: Path, dx: FakeDx) -> None:
    settings = {
        "email": EMAIL,
        "tool": TOOL,
        "instanceUrl": dx.url,
        "modelBreakdowns": True,
        "flush": {"enabled": False, "delaySeconds": 0},
    }
    async with sidecar(home, settings) as client:
        await client.record(timestamp=days_ago(2), model="model-a", input_tokens=4, spend_cents=2)
    assert json.loads((home / "settings.json").read_text())["dxTelemetry"]["instanceUrl"] == dx.url

    # the fallbacks apply only where a setting is empty: the saved settings win
    flushed = run_cli(
        home,
        "flush",
        "--json",
        DX_TELEMETRY_EMAIL="env@example.com",
        DX_TELEMETRY_TOOL="env-tool",
        DX_TELEMETRY_INSTANCE_URL="http://127.0.0.1:9",
    )
    assert ok_json(flushed)["pushed"] == [{"date": date_ago(2), "tool": TOOL, "destination": "dx"}]
    model = {"model": "model-a", "input_tokens": 4, "output_tokens": 0, "cache_write_tokens": 0}
    assert dx.stored == [
        {
            **dx_record(date_ago(2), events=1, spend=2, input_tokens=4),
            "model_breakdowns": [{**model, "cache_read_tokens": 0, "spend_cents": 2}],
        }
    ]


# -- the program itself ----------------------------------------------------------------


def test_the_console_script_is_the_same_program(home: Path) -> None:
    version = run_script(home, "--version")
    assert version.returncode == EXIT_OK and version.stdout.strip().endswith(__version__)
    # bare, on a terminal: help instead of waiting for LSP on stdin
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [str(SCRIPT)],
            env=sidecar_env(home),
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == EXIT_OK
    assert "usage: dx-lsp-telemetry" in done.stdout
    for verb in ("serve", "status", "report", "record", "flush", "demo"):
        assert verb in done.stdout


def test_demo_prints_an_outbox_record(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "unused-home", "demo")
    assert done.returncode == EXIT_OK, done.stderr
    match = re.search(
        r"outbox/(\S+)\.json \(exactly what would be POSTed[^\n]*\n(.*?)\n\n", done.stdout, re.S
    )
    assert match, done.stdout
    record = json.loads(match.group(2))
    assert match.group(1) == f"{record['date']}__demo-assistant"
    assert record["date"] in (date_ago(1), date_ago(2))  # just after midnight: 2 days ago
    assert record == {
        "email": "developer@example.com",
        "date": record["date"],
        "is_active": True,
        "tool": "demo-assistant",
        "metrics": {"events": 2, "suggestions_accepted": 3},
        "input_tokens": 2000,
        "output_tokens": 2790,
        "cache_write_tokens": 0,
        "cache_read_tokens": 5000,
        "spend_cents": 6,  # 1.37 + 4.62 = 5.99, rounded once
    }
    assert not (tmp_path / "unused-home").exists()  # the demo uses its own temporary home


# -- settings: parse_settings ---------------------------------------------------------------

ENV = {
    "DX_TELEMETRY_EMAIL": "env@example.com",
    "DX_TELEMETRY_TOOL": "env-tool",
    "DX_TELEMETRY_INSTANCE_URL": "https://env.getdx.net/",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({}, ("env@example.com", "env-tool", "https://env.getdx.net"), id="absent"),
        pytest.param(
            {"email": "", "tool": "  ", "instanceUrl": ""},
            ("env@example.com", "env-tool", "https://env.getdx.net"),
            id="empty",
        ),
        pytest.param(
            {"email": "me@example.com", "tool": "", "instanceUrl": "https://acme.getdx.net"},
            ("me@example.com", "env-tool", "https://acme.getdx.net"),
            id="some-set",
        ),
        pytest.param(
            {"email": "me@example.com", "tool": "mine", "instanceUrl": "https://acme.getdx.net/"},
            ("me@example.com", "mine", "https://acme.getdx.net"),
            id="all-set",
        ),
        pytest.param(
            {"email": 5, "tool": ["x"]},
            ("env@example.com", "env-tool", "https://env.getdx.net"),
            id="malformed-means-empty",
        ),
    ],
)
def test_env_fallbacks_apply_only_where_the_setting_is_empty(
    raw: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    settings = parse_settings(raw, ENV).settings
    assert (settings.email, settings.tool, settings.instance_url) == expected


def test_blank_env_fallbacks_are_ignored() -> None:
    blank = dict.fromkeys(ENV, "   ")
    settings = parse_settings({}, blank).settings
    assert (settings.email, settings.tool, settings.instance_url) == ("", "", "")
    assert parse_settings({}, {}).settings == Settings()


NESTED: dict[str, Any] = {
    "enabled": False,
    "email": "me@example.com",
    "tool": "mine",
    "instanceUrl": "https://acme.getdx.net",
    "dayBoundary": "local",
    "flush": {"enabled": False, "delaySeconds": 5, "backfillDays": 3},
    "reportInactiveDays": False,
    "modelBreakdowns": True,
    "retentionDays": 30,
    "spend": {"estimate": False},
    "sources": {"codex": {"enabled": True, "tool": "codex-cli", "path": "/opt/codex"}},
}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_nested_dotted_and_wrapped_settings_mean_the_same() -> None:
    nested = parse_settings(NESTED, {})
    assert nested.problems == [] and nested.unknown == []
    s = nested.settings
    assert (s.enabled, s.day_boundary, s.flush_enabled, s.flush_delay_seconds) == (
        False,
        "local",
        False,
        5,
    )
    assert (s.backfill_days, s.report_inactive_days, s.model_breakdowns) == (3, False, True)
    assert (s.retention_days, s.spend_estimate) == (30, False)
    assert s.sources["codex"].enabled and s.sources["codex"].tool == "codex-cli"
    assert s.sources["codex"].path == "/opt/codex"
    assert s.sources["claudeCode"].enabled is False
    assert s.sources["claudeCode"].tool == "claude-code"

    dotted = parse_settings(flatten(NESTED), {})
    assert "sources.codex.enabled" in flatten(NESTED)
    assert dotted.settings == s and dotted.problems == [] and dotted.unknown == []
    wrapped = parse_settings({"dxTelemetry": NESTED}, {})
    assert wrapped.settings == s and wrapped.problems == []
    # what the sidecar saves for the CLI reads back to the same settings
    assert parse_settings(s.to_editor_dict(), {}).settings == s


def test_unknown_keys_are_reported_apart_from_problems() -> None:
    parsed = parse_settings({"emial": "me@example.com", "python": {"interpreter": "x"}}, {})
    assert parsed.unknown == ["dxTelemetry.emial"]  # python.* belongs to the extension
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://acme.getdx.net", True),
        ("https://acme.getdx.net/", True),
        ("http://127.0.0.1:8080", True),
        ("http://127.8.9.10", True),
        ("http://localhost:3000", True),
        ("http://[::1]:9000", True),
        ("http://acme.getdx.net", False),
        ("http://10.0.0.1", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://localhost.example.com", False),
        ("ftp://acme.getdx.net", False),
        ("acme.getdx.net", False),
        ("https://user:secret@acme.getdx.net", False),
        ("https://acme.getdx.net/?next=1", False),
    ],
)
def test_instance_url_must_be_https_or_loopback_http(url: str, allowed: bool) -> None:
    settings = parse_settings({"email": EMAIL, "tool": TOOL, "instanceUrl": url}, {}).settings
    problems = blocking_problems(settings, TEST_TOKEN)
    if allowed:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith("dxTelemetry.instanceUrl: ")
    # the env fallback is held to the same rule
    from_env = parse_settings({}, {**ENV, "DX_TELEMETRY_INSTANCE_URL": url}).settings
    assert (blocking_problems(from_env, TEST_TOKEN) == []) == allowed
