"""Continue source: `dev_data/**/tokensGenerated.jsonl`, appended a line at a time, counted once.

Fixture lines are written as Continue writes them (`JSON.stringify(data) + "\\n"`, compact, in
its field order). Each test drives the real `Ingestor` on a temporary data folder and reads the
ledger back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dx_lsp_telemetry.sources.continue_dev as continue_dev
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.base import FileState
from dx_lsp_telemetry.sources.continue_dev import Continue
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.harness import cli_json, date_ago, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import Tally, ledger_tallies

#: (events, input, output, cache writes, cache reads, spend in cents)
DAY1, DAY2 = "2025-11-20", "2025-11-21"
USER_ID = "usr_8c1f0a-secret"


def line(
    timestamp: str | None,
    prompt: int,
    generated: int,
    model: str = "claude-sonnet-4-20250514",
    provider: str = "anthropic",
) -> str:
    """One line of schema 0.2.0 (no `timestamp` given: the 0.1.0 shape, four fields)."""
    data: dict[str, Any]
    if timestamp is None:
        data = {"model": model, "provider": provider}
    else:
        data = {
            "eventName": "tokensGenerated",
            "schema": "0.2.0",
            "timestamp": timestamp,
            "userId": USER_ID,
            "userAgent": "Visual Studio Code/1.106.0 (Continue/1.3.20)",
            "selectedProfileId": "local",
            "model": model,
            "provider": provider,
        }
    data.update({"promptTokens": prompt, "generatedTokens": generated})
    return json.dumps(data, separators=(",", ":")) + "\n"


def ts(day: str, hour: int = 10, minute: int = 0) -> str:
    return f"{day}T{hour:02d}:{minute:02d}:00.000Z"


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "continue"  # ~/.continue
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.source = Continue()
        self.ingestor = self.new_ingestor()

    def new_ingestor(self) -> Ingestor:
        source = Continue()
        return Ingestor(self.data, source, [self.root], IngestOptions("continue", estimate=False))

    def log(self, schema: str = "0.2.0") -> Path:
        path = self.root / "dev_data" / schema / "tokensGenerated.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, text: str, schema: str = "0.2.0") -> Path:
        """`fs.writeFileSync(path, line, {flag: "a"})`."""
        path = self.log(schema)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
        return path

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / "continue.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)

    def ledger_text(self) -> str:
        return "".join(p.read_text() for p in self.data.ledger_dir.glob("*.jsonl"))


@pytest.fixture
def cont(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_exact_per_day_totals_across_schema_folders(cont: Setup) -> None:
    cont.append(line(ts(DAY1, 9), 1234, 56) + line(ts(DAY1, 23, 59), 1000, 4, model="gpt-4o"))
    cont.append(line(ts(DAY2, 0, 1), 10, 2), schema="0.3.0")
    cont.append(line(ts(DAY2, 12), 300, 30, model="codestral-latest"))
    stats = cont.scan()
    assert (stats.files, stats.records, stats.problems) == (2, 4, [])
    assert cont.totals() == {
        (DAY1, "continue"): (2, 2234, 60, 0, 0, 0.0),
        (DAY2, "continue"): (2, 310, 32, 0, 0, 0.0),
    }
    models = sorted(str(e.model) for e in winners(cont.data.ledger_dir))
    assert models == [
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-20250514",
        "codestral-latest",
        "gpt-4o",
    ]


def test_the_same_line_in_two_files_is_two_calls(cont: Setup) -> None:
    same = line(ts(DAY1), 100, 10)
    cont.append(same)
    cont.append(same, schema="0.3.0")
    assert cont.scan().records == 2
    assert cont.totals() == {(DAY1, "continue"): (2, 200, 20, 0, 0, 0.0)}


def test_a_partial_last_line_waits_for_its_end(cont: Setup) -> None:
    whole = line(ts(DAY1, 11), 700, 70)
    cont.append(line(ts(DAY1), 100, 10) + line(ts(DAY1, 10, 30), 200, 20) + whole[:25])
    assert cont.scan().records == 2
    assert cont.scan().records == 0
    cont.append(whole[25:])
    assert cont.scan().records == 1
    assert cont.scan().records == 0
    assert cont.totals() == {(DAY1, "continue"): (3, 1000, 100, 0, 0, 0.0)}


def test_lines_appended_while_the_file_is_read(
    cont: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cont.append(line(ts(DAY1), 100, 10) + line(ts(DAY1, 10, 1), 200, 20))
    late = line(ts(DAY1, 10, 2), 300, 30)
    later = line(ts(DAY1, 10, 3), 400, 40)
    real = continue_dev.appended_lines

    def appending(p: Path, state: FileState) -> Iterator[tuple[int, bytes]]:
        for n, item in enumerate(real(p, state)):
            if n == 0:  # Continue writes while we are between lines
                with open(path, "a", encoding="utf-8") as f:
                    f.write(late + later[:30])
            yield item

    monkeypatch.setattr(continue_dev, "appended_lines", appending)
    first = cont.scan().records
    monkeypatch.undo()
    assert first in (2, 3)  # the complete line appended may or may not be in this read
    cont.append(later[30:])
    assert first + cont.scan().records == 4
    assert cont.scan().records == 0
    assert cont.new_ingestor().scan().records == 0
    assert cont.totals() == {(DAY1, "continue"): (4, 1000, 100, 0, 0, 0.0)}


def test_undated_old_lines_are_skipped_with_one_problem(cont: Setup) -> None:
    # migrated from dev_data/tokens_generated.jsonl (before 2025): no timestamp, no day
    cont.append(line(None, 5000, 500) * 3, schema="0.1.0")
    cont.append(line(ts(DAY1), 10, 1))
    stats = cont.scan()
    assert stats.records == 1
    assert len(stats.problems) == 1
    assert "skipped 3 lines without a timestamp" in stats.problems[0]
    cont.append(line(None, 1, 1), schema="0.1.0")
    assert len(cont.scan().problems) == 1  # the new one only, once
    assert cont.scan().problems == []
    assert cont.totals() == {(DAY1, "continue"): (1, 10, 1, 0, 0, 0.0)}


def test_unreadable_lines_are_skipped_and_named(cont: Setup) -> None:
    cont.append(
        line(ts(DAY1), 10, 1)
        + "{not json\n"
        + line(ts(DAY1), -4, 1)
        + line("yesterday", 4, 1)
        + "\n"
        + line(ts(DAY1, 12), 20, 2)
    )
    stats = cont.scan()
    assert stats.records == 2
    assert stats.problems and "skipped 3 unreadable lines" in stats.problems[0]
    assert cont.totals() == {(DAY1, "continue"): (2, 30, 3, 0, 0, 0.0)}


def test_restart_and_crash_count_nothing_twice(cont: Setup) -> None:
    cont.append(line(ts(DAY1), 100, 10) * 2)  # two identical calls: two records
    assert cont.scan().records == 2
    saved = cont.checkpoint.read_bytes()
    cont.append(line(ts(DAY2), 300, 30))
    assert cont.scan().records == 1
    expected = {
        (DAY1, "continue"): (2, 200, 20, 0, 0, 0.0),
        (DAY2, "continue"): (1, 300, 30, 0, 0, 0.0),
    }
    assert cont.totals() == expected
    assert cont.new_ingestor().scan().records == 0
    # a crash after the ledger write, before the checkpoint: the checkpoint is older
    cont.checkpoint.write_bytes(saved)
    assert cont.new_ingestor().scan().records == 1
    assert cont.totals() == expected
    cont.checkpoint.unlink()  # or lost altogether
    assert cont.new_ingestor().scan().records == 3
    assert cont.totals() == expected


def test_a_replaced_file_is_read_again_and_its_new_lines_count(cont: Setup) -> None:
    path = cont.append(line(ts(DAY1), 100, 10) + line(ts(DAY1, 11), 200, 20))
    assert cont.scan().records == 2
    path.unlink()  # dev data cleared; new calls start a new file at offset 0
    cont.append(line(ts(DAY1, 12), 5000, 50))
    assert cont.scan().records == 1
    with open(path, "r+", encoding="utf-8") as f:  # truncated in place, then written again
        f.truncate(0)
    cont.append(line(ts(DAY1, 13), 7, 7))
    assert cont.scan().records == 1
    assert cont.totals() == {(DAY1, "continue"): (4, 5307, 87, 0, 0, 0.0)}


def test_homes_files_and_wants(
    tmp_path: Path, cont: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Continue()
    home = tmp_path / "home"
    assert source.homes("", {"HOME": str(home)}) == [home / ".continue"]
    custom = tmp_path / "custom"
    assert source.homes("", {"HOME": str(home), "CONTINUE_GLOBAL_DIR": str(custom)}) == [custom]
    assert source.homes(str(custom / "dev_data"), {"CONTINUE_GLOBAL_DIR": "/elsewhere"}) == [custom]
    monkeypatch.chdir(tmp_path)  # a relative CONTINUE_GLOBAL_DIR: against the cwd, as Continue
    assert source.homes("", {"CONTINUE_GLOBAL_DIR": "rel"}) == [tmp_path / "rel"]

    cont.append(line(ts(DAY1), 1, 1))
    cont.append(line(ts(DAY1), 1, 1), schema="0.1.0")
    other = cont.root / "dev_data" / "0.2.0" / "autocomplete.jsonl"
    other.write_text('{"prefix":"def secret():"}\n')
    files = list(source.files([cont.root]))
    assert files == [cont.log("0.1.0"), cont.log("0.2.0")]
    assert source.wants(cont.log())
    assert not source.wants(other)
    assert not source.wants(tmp_path / "elsewhere" / "tokensGenerated.jsonl")
    assert source.watch_dirs([cont.root]) == [cont.root / "dev_data"]


def test_only_counts_model_and_time_enter_the_ledger(cont: Setup) -> None:
    cont.append(line(ts(DAY1), 1, 1))
    assert cont.scan().records == 1
    ledger = cont.ledger_text()
    for secret in (USER_ID, "Visual Studio Code", "local", "anthropic", "dev_data", "0.2.0"):
        assert secret not in ledger, secret


def test_cli_scan_then_report(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "dot-continue"
    log = root / "dev_data" / "0.2.0" / "tokensGenerated.jsonl"
    log.parent.mkdir(parents=True)
    d2, d3 = date_ago(2), date_ago(3)
    log.write_text(
        line(ts(d3, 8), 1200, 30) + line(ts(d2, 9), 800, 20) + line(ts(d2, 17), 50, 5),
        encoding="utf-8",
    )
    done = run_cli(home, "scan", "--source", "continue", "--path", str(root))
    assert done.returncode == 0, done.stderr
    assert "continue: 1 file, 3 records" in done.stdout
    assert (
        "continue: 1 file, 0 records"
        in run_cli(home, "scan", "--source", "continue", "--path", str(root)).stdout
    )
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert (days[(d2, "continue")]["input_tokens"], days[(d2, "continue")]["output_tokens"]) == (
        850,
        25,
    )
    assert days[(d2, "continue")]["events"] == 2
    assert (days[(d3, "continue")]["input_tokens"], days[(d3, "continue")]["output_tokens"]) == (
        1200,
        30,
    )
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources["continue"]["name"] == "continue" and sources["continue"]["records"] == 3
