"""Aider: its analytics log, built from the real Aider 0.86.2's output (`tests/fixtures/`).

The log is an event log (one `message_send` line per reply), appended; it is read as appended,
each line once, keyed by its own content (no path), with the real tool's numbers checked exactly
against what the fake model API sent.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.aider import Aider
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor
from tests.harness import cli_json, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import ledger_tallies

REAL = Path(__file__).parent / "fixtures" / "aider-0.86.2"
LOG = REAL / "aider-analytics.jsonl"
USER_ID = "aa095927-e2b9-488d-aaf4-fdb213b5e119"


def day_of(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).date().isoformat()


def real_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LOG.read_text().splitlines()]


def write_recent_log(log: Path) -> None:
    """The real log with its times moved to a day ago, inside any backfill window: 2 replies,
    2402 input and 101 output tokens."""
    lines = real_lines()
    recent = int(datetime.now(timezone.utc).timestamp()) - 86400
    for line in lines:
        line["time"] = recent + (line["time"] - lines[0]["time"])
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "aider" / "analytics.jsonl"
        self.log.parent.mkdir()
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.ingestor = self.process()

    def process(self, log: Path | None = None) -> Ingestor:
        return Ingestor(self.data, Aider(), [log or self.log], IngestOptions("aider", False))


@pytest.fixture
def aider(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_the_real_log_gives_the_real_tokens_and_cost(aider: Setup) -> None:
    shutil.copy(LOG, aider.log)
    stats = aider.ingestor.scan()
    assert (stats.files, stats.records, stats.problems) == (1, 2, [])
    sent = [json.loads(line)["sent_usage"] for line in (REAL / "fake-api.jsonl").open()]
    events = sorted(winners(aider.data.ledger_dir), key=lambda e: e.timestamp)
    # the whole prompt (the API's count, cache included: Aider logs no split) and the completion
    assert [(e.input_tokens, e.output_tokens) for e in events] == [
        (u["prompt_tokens"], u["completion_tokens"]) for u in sent
    ]
    assert [(e.cache_read_tokens, e.cache_write_tokens) for e in events] == [(0, 0), (0, 0)]
    costs = [line["properties"]["cost"] for line in real_lines() if line["event"] == "message_send"]
    assert costs == [0.00325, 0.0032637500000000006]  # Aider's own cost, its float as logged
    assert [float(e.spend_cents) for e in events] == pytest.approx([c * 100 for c in costs])
    assert [e.model for e in events] == [None, None]  # `openai/REDACTED`: no model
    day = day_of(real_lines()[4]["time"])
    tally = ledger_tallies(aider.data)
    assert list(tally) == [(day, "aider")]
    assert tally[(day, "aider")][:5] == (2, 2402, 101, 0, 0)
    assert tally[(day, "aider")][5] == pytest.approx(0.651375)
    assert aider.ingestor.scan().records == 0
    assert aider.process().scan().records == 0


def test_appended_lines_torn_lines_and_a_replaced_log(aider: Setup) -> None:
    text = LOG.read_text()
    cut = text.index('{"event": "message_send",', text.index("exit")) + 40
    aider.log.write_text(text[:cut])  # the second reply half written
    assert aider.ingestor.scan().records == 1
    with open(aider.log, "a") as f:
        f.write(text[cut:])
    assert aider.ingestor.scan().records == 1
    aider.log.unlink()  # replaced by a file holding only the second run: read from its start
    aider.log.write_text("".join(json.dumps(line) + "\n" for line in real_lines()[6:]))
    assert aider.ingestor.scan().records == 1  # the second reply read again: the same event
    assert ledger_tallies(aider.data)[(day_of(real_lines()[0]["time"]), "aider")][0] == 2


def test_the_log_copied_elsewhere_counts_once(aider: Setup, tmp_path: Path) -> None:
    shutil.copy(LOG, aider.log)
    aider.ingestor.scan()
    moved = tmp_path / "elsewhere" / "aider.jsonl"
    moved.parent.mkdir()
    shutil.copy(LOG, moved)
    assert aider.process(moved).scan().records == 2  # read, but the same events
    assert sum(t[0] for t in ledger_tallies(aider.data).values()) == 2


def test_identical_messages_in_one_second_are_two(aider: Setup) -> None:
    line = json.dumps(
        {
            "event": "message_send",
            "properties": {
                "main_model": "ollama/qwen2.5-coder",
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "total_tokens": 12,
                "cost": 0.0,
                "total_cost": 0.0,
            },
            "user_id": USER_ID,
            "time": 1796237214,
        }
    )
    aider.log.write_text(line + "\n" + line + "\n")
    assert aider.ingestor.scan().records == 2
    with open(aider.log, "a") as f:
        f.write(line + "\n")  # a third in the same second, read on its own
    assert aider.ingestor.scan().records == 1
    assert aider.process().scan().records == 0
    aider.ingestor.checkpoints.path.unlink()
    assert aider.process().scan().records == 3  # from scratch: the same three keys
    assert sum(t[0] for t in ledger_tallies(aider.data).values()) == 3
    assert {e.model for e in winners(aider.data.ledger_dir)} == {"ollama/qwen2.5-coder"}


def test_bad_lines_are_named_and_the_rest_is_read(aider: Setup) -> None:
    good = LOG.read_text()
    bad = [
        '{"event": "message_send", "properties": {"prompt_tokens": "ten"}, "time": 1796237300}',
        '{"event": "message_send", "properties": [], "time": 1796237300}',
        '{"event": "message_send", "properties": {"prompt_tokens": 1}}',
        '{"event": "message_send" broken',
    ]
    aider.log.write_text(good + "\n".join(bad) + "\n")
    stats = aider.ingestor.scan()
    assert stats.records == 2
    assert len(stats.problems) == 1
    assert stats.problems[0].startswith("analytics.jsonl: skipped 4 unreadable message lines")
    assert "byte " in stats.problems[0]


def test_nothing_private_is_stored(aider: Setup) -> None:
    shutil.copy(LOG, aider.log)
    aider.ingestor.scan()
    stored = "".join(p.read_text() for p in aider.data.home.rglob("*.json*"))
    for secret in (USER_ID, "diff", str(aider.log.parent), "REDACTED"):
        assert secret not in stored, secret


def test_homes_watch_and_wants(tmp_path: Path) -> None:
    source = Aider()
    home = tmp_path / "h"
    default = home / ".aider" / "analytics.jsonl"
    assert source.homes("", {"HOME": str(home)}) == [default]
    assert source.homes("", {"AIDER_ANALYTICS_LOG": str(tmp_path / "a.jsonl")}) == [
        tmp_path / "a.jsonl"
    ]
    default.parent.mkdir(parents=True)
    assert source.watch_dirs([default]) == [default.parent]
    elsewhere = tmp_path / "a.jsonl"
    assert source.watch_dirs([elsewhere]) == []  # the periodic scan reads it
    assert source.wants(default) and source.wants(elsewhere)
    assert not source.wants(default.parent / "analytics.json")


def test_cli_scan_with_the_file_as_path(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "aider-analytics.jsonl"
    write_recent_log(log)
    done = run_cli(home, "scan", "--source", "aider", "--path", str(log))
    assert done.returncode == 0, done.stderr
    assert "aider: 1 file, 2 records" in done.stdout
    report = cli_json(home, "report", "--json", "--days", "3")
    totals = [d["totals"] for d in report["days"] if d["tool"] == "aider"]
    assert sum(t["input_tokens"] for t in totals) == 2402
    assert sum(t["output_tokens"] for t in totals) == 101
