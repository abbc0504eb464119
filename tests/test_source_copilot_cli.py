"""Copilot CLI source, on what the real Copilot CLI 1.0.102 wrote (`tests/fixtures/copilot-cli-
1.0.102`: two prompts, the second with `--continue`, against a fake model API whose usage is
known), and on that file cut, copied, torn and broken the ways files are."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import dx_lsp_telemetry.sources.copilot_cli as copilot_cli
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.copilot_cli import CopilotCli
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.harness import cli_json, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import Tally, all_file_bytes, ledger_tallies

FIXTURE = Path(__file__).parent / "fixtures" / "copilot-cli-1.0.102"
SID = "8b73d733-853d-46f3-8d2a-e6afe27134eb"
REAL = FIXTURE / "session-state" / SID / "events.jsonl"
TOOL = "copilot-cli"
DAY = "2026-12-02"


def known() -> tuple[int, int, int, int, int]:
    """What the fake API reported, in our buckets: (calls, input without cache, output, cache
    writes, cache reads)."""
    calls = [json.loads(line)["known"] for line in (FIXTURE / "fake-api.jsonl").open()]
    return (
        len(calls),
        sum(c["input"] for c in calls),
        sum(c["output"] for c in calls),
        sum(c["cache_write"] for c in calls),
        sum(c["cache_read"] for c in calls),
    )


def real_lines() -> list[str]:
    return REAL.read_text(encoding="utf-8").splitlines(keepends=True)


def compact(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"


def usage_line(n: int = 0, **changes: Any) -> dict[str, Any]:
    """The real `session.usage_record` of call `n`, with `changes` to its `data.usage`."""
    lines = [json.loads(x) for x in real_lines() if '"session.usage_record"' in x]
    event: dict[str, Any] = lines[n]
    event["data"]["usage"].update(changes)
    return event


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "dot-copilot"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.ingestor = self.new_ingestor()

    def new_ingestor(self) -> Ingestor:
        return Ingestor(self.data, CopilotCli(), [self.root], IngestOptions(TOOL, estimate=False))

    def events(self, session: str = SID) -> Path:
        path = self.root / "session-state" / session / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, text: str, path: Path | None = None) -> Path:
        path = path or self.events()
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
        return path

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / f"{TOOL}.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)


@pytest.fixture
def cli(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_the_real_session_counts_exactly_what_the_api_reported(cli: Setup) -> None:
    shutil.copytree(FIXTURE / "session-state", cli.root / "session-state")
    calls, inp, out, cw, cr = known()
    assert (calls, inp, out, cw, cr) == (2, 1000 + 1001, 50 + 51, 0, 200 + 201)
    stats = cli.scan()
    assert (stats.files, stats.records, stats.problems) == (1, 2, [])
    # not the shutdowns' running totals (2402 input after the second run, which repeats the first)
    assert cli.totals() == {(DAY, TOOL): (calls, inp, out, cw, cr, 0.0)}
    events = sorted(winners(cli.data.ledger_dir), key=lambda e: e.timestamp)
    assert [e.model for e in events] == ["gpt-5.4", "gpt-5.4"]
    assert [e.timestamp.isoformat() for e in events] == [
        "2026-12-02T18:46:18.176000+00:00",
        "2026-12-02T18:46:19.974000+00:00",
    ]
    assert cli.scan().records == 0
    assert cli.new_ingestor().scan().records == 0


def test_each_run_counts_as_it_is_written_and_a_partial_line_waits(cli: Setup) -> None:
    lines = real_lines()
    cli.append("".join(lines[:8]))  # the first run, through its shutdown
    assert cli.scan().records == 1
    second_usage = lines[11]
    cli.append("".join(lines[8:11]) + second_usage[:300])
    stats = cli.scan()
    assert (stats.records, stats.problems) == (0, [])
    cli.append(second_usage[300:] + "".join(lines[12:]))
    assert cli.scan().records == 1
    assert cli.scan().records == 0
    _, inp, out, cw, cr = known()
    assert cli.totals() == {(DAY, TOOL): (2, inp, out, cw, cr, 0.0)}


def test_copies_of_a_session_count_once(cli: Setup) -> None:
    shutil.copytree(FIXTURE / "session-state", cli.root / "session-state")
    # a fork's folder repeating the calls, the older flat layout, an archived copy
    shutil.copy(REAL, cli.events("0f0f0f0f-1111-4222-8333-444444444444"))
    shutil.copy(REAL, cli.root / "session-state" / f"{SID}.jsonl")
    (cli.root / "history-session-state" / SID).mkdir(parents=True)
    shutil.copy(REAL, cli.root / "history-session-state" / SID / "events.jsonl")
    stats = cli.scan()
    assert stats.files == 4
    _, inp, out, cw, cr = known()
    assert cli.totals() == {(DAY, TOOL): (2, inp, out, cw, cr, 0.0)}


def test_a_rewritten_or_truncated_file_counts_nothing_twice(cli: Setup) -> None:
    lines = real_lines()
    path = cli.append("".join(lines))
    assert cli.scan().records == 2
    path.write_text("".join(lines[:8]), encoding="utf-8")  # truncated: read again from 0
    assert cli.scan().records == 1
    path.unlink()  # replaced by a new file (a resumed copy): read from its start
    cli.append(compact({"type": "session.info", "data": {}}) + "".join(lines))
    assert cli.scan().records == 2
    _, inp, out, cw, cr = known()
    assert cli.totals() == {(DAY, TOOL): (2, inp, out, cw, cr, 0.0)}


def test_input_includes_the_cache_reads_and_writes(cli: Setup) -> None:
    # an Anthropic model behind Copilot: cache writes too, all inside `inputTokens`
    event = usage_line(0, model="claude-sonnet-4.5", inputTokens=1500, cacheWriteTokens=300)
    cli.append(compact(event))
    assert cli.scan().records == 1
    assert cli.totals() == {(DAY, TOOL): (1, 1000, 50, 300, 200, 0.0)}


def test_broken_lines_are_named_with_their_line_and_the_rest_is_read(cli: Setup) -> None:
    lines = real_lines()
    first, second = usage_line(0), usage_line(1)
    many = usage_line(0, inputTokens="many", apiCallId="x-1")
    many["data"]["usage"]["accounting"]["usageId"] = "x-1"
    negative = usage_line(0, cacheReadTokens=-1)
    negative["data"]["usage"]["accounting"]["usageId"] = "x-2"
    undated = usage_line(0)
    del undated["timestamp"]
    no_usage = {"type": "session.usage_record", "data": {}, "id": "e", "timestamp": "x"}
    torn = compact(first)[:200]  # a crash mid-line, then the next record on the same line
    cli.append(
        "".join(lines[:4])  # lines 1-4
        + torn
        + compact(second)  # line 5: the torn part is lost, the record after it is read
        + compact(many)  # 6
        + '{not json but it says "session.usage_record"\n'  # 7
        + compact(negative)  # 8
        + compact(undated)  # 9
        + compact(no_usage)  # 10
        + compact({"type": "user.message", "data": {"content": '"session.usage_record"'}})
        + compact(first)  # 12
    )
    stats = cli.scan()
    assert stats.records == 2
    _, inp, out, cw, cr = known()
    assert cli.totals() == {(DAY, TOOL): (2, inp, out, cw, cr, 0.0)}
    assert len(stats.problems) == 1
    problem = stats.problems[0]
    assert problem.startswith(
        "events.jsonl: skipped 5 unreadable usage records (line 6: inputTokens is not a token "
        "count (not a whole number); line 7: not JSON; line 8: cacheReadTokens is not a token "
        "count (negative); ..."
    ), problem
    assert "many" not in problem
    cli.append(compact(usage_line(0)))
    assert cli.scan().problems == []  # told once


def test_huge_lines_without_usage_are_not_decoded(
    cli: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = real_lines()
    tool_output = {"type": "tool.execution_complete", "data": {"result": "y" * (32 << 20)}}
    cli.append("".join(lines[:4]) + compact(tool_output) + "".join(lines[4:]))
    decoded: list[int] = []
    real = copilot_cli._decode

    def counting(line: bytes) -> Any:
        decoded.append(len(line))
        return real(line)

    monkeypatch.setattr(copilot_cli, "_decode", counting)
    assert cli.scan().records == 2
    assert len(decoded) == 2 and max(decoded) < 4096


def test_nothing_private_reaches_the_data_folder(cli: Setup) -> None:
    shutil.copytree(FIXTURE / "session-state", cli.root / "session-state")
    assert cli.scan().records == 2
    stored = all_file_bytes(cli.data.home)
    secrets = ["Say hello.", "Say goodbye.", "Fake reply", "GitHub Copilot CLI", "dx-real-capture"]
    secrets += [SID, "chatcmpl-fake", "37cd40b0"]
    for name, content in stored.items():
        for secret in secrets:
            assert secret.encode() not in content, (name, secret)


def test_homes_files_and_wants(tmp_path: Path, cli: Setup) -> None:
    source = CopilotCli()
    home = tmp_path / "home"
    assert source.homes("", {"HOME": str(home)}) == [home / ".copilot"]
    custom = tmp_path / "custom"
    assert source.homes("", {"HOME": str(home), "COPILOT_HOME": str(custom)}) == [custom]
    assert source.homes(str(custom / "session-state"), {"COPILOT_HOME": "/x"}) == [custom]
    events = cli.append("", cli.events())
    flat = cli.append("", cli.root / "session-state" / "old.jsonl")
    for kept in ("checkpoints/index.jsonl", "files/notes.jsonl", "research/r.jsonl"):
        (events.parent / kept).parent.mkdir(parents=True)
        (events.parent / kept).write_text("{}\n")
    assert list(source.files([cli.root])) == [events, flat]
    assert source.watch_dirs([cli.root]) == [cli.root / "session-state"]
    assert source.wants(events) and source.wants(flat)
    assert not source.wants(events.parent / "checkpoints" / "index.jsonl")
    assert not source.wants(tmp_path / "x" / "sessions" / "events.jsonl")
    assert not source.wants(events.with_suffix(".yaml"))


def test_cli_scan_by_label_or_settings_key_then_report(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "copilot-home"
    shutil.copytree(FIXTURE / "session-state", root / "session-state")
    paths = DataPaths(home)
    paths.ensure()
    paths.config_file.write_text(json.dumps({"retentionDays": 3650}))  # the capture's day stays
    done = run_cli(home, "scan", "--source", "copilot-cli", "--path", str(root))
    assert done.returncode == 0, done.stderr
    assert "copilot-cli: 1 file, 2 records" in done.stdout
    again = run_cli(home, "scan", "--source", "copilotCli", "--path", str(root))
    assert "copilot-cli: 1 file, 0 records" in again.stdout, again.stderr
    days = (datetime.now(timezone.utc).date() - date.fromisoformat(DAY)).days + 1
    report = cli_json(home, "report", "--json", "--days", str(days))
    totals = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}[(DAY, TOOL)]
    _, inp, out, _, cr = known()
    assert (totals["events"], totals["input_tokens"], totals["cache_read_tokens"]) == (2, inp, cr)
    assert totals["output_tokens"] == out
