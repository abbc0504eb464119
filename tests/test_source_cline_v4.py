"""Cline 4's session files in the `cline` source: rewritten whole, counted once per message.

Fixtures are written as Cline's SDK writes them (cline/cline `sdk/packages/core`,
`SessionManifestStore.persistSessionMessages`): `JSON.stringify(payload, null, 2) + "\\n"` with
`writeFileSync`, in place, so a reader can catch the file truncated or half written. Each test
drives the real `Ingestor` on a temporary data folder and reads the ledger back.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.cline import Cline
from dx_lsp_telemetry.sources.cline_v4 import ClineSessions, sessions_dir
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.harness import all_files_text, cli_json, date_ago, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import Tally, ledger_tallies
from tests.test_source_cline import cline_request, compact, text, usage

SECRET = "fix the invoice bug in /home/dev/secret-project/billing.ts"
SID = "1772359200000_k3J9x"
DAY1, DAY2 = "2026-03-01", "2026-03-02"


def ms(day: str, minute: int = 0) -> int:
    y, m, d = (int(p) for p in day.split("-"))
    return int(datetime(y, m, d, 10, minute, tzinfo=timezone.utc).timestamp() * 1000)


def user(message_id: str, ts: int) -> dict[str, Any]:
    return {
        "id": message_id,
        "role": "user",
        "content": [{"type": "text", "text": SECRET}],
        "ts": ts,
    }


def assistant(
    message_id: str | None,
    ts: int | str | None,
    inp: int,
    out: int,
    cr: int = 0,
    cw: int = 0,
    cost: float | None = None,
    model: str = "claude-sonnet-4-5",
) -> dict[str, Any]:
    """An assistant turn; `inp` is `inputTokens`, which includes the cache reads and writes."""
    message: dict[str, Any] = {
        "id": message_id,
        "role": "assistant",
        "content": [
            {"type": "text", "text": f"Looking at {SECRET}"},
            {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {"path": SECRET}},
        ],
        "ts": ts,
        "modelInfo": {"id": model, "provider": "anthropic"},
        "metrics": {"inputTokens": inp, "outputTokens": out, "cacheReadTokens": cr},
    }
    message["metrics"]["cacheWriteTokens"] = cw
    if cost is not None:
        message["metrics"]["cost"] = cost
    if message_id is None:
        del message["id"]
    if ts is None:
        del message["ts"]
    return message


def payload(messages: list[dict[str, Any]], session: str = SID, agent: str = "lead") -> str:
    body: dict[str, Any] = {
        "version": 1,
        "updated_at": "2026-03-01T10:30:00.000Z",
        "agent": agent,
        "sessionId": session,
    }
    if agent == "subagent":
        body["taskType"] = "subagent_task"
    body["messages"] = messages
    body["system_prompt"] = f"You are Cline. The user works on {SECRET}"
    return json.dumps(body, indent=2) + "\n"


class Setup:
    """`~/.cline/data/sessions` and a data folder for our ledger."""

    def __init__(self, tmp_path: Path) -> None:
        self.sessions = tmp_path / "dot-cline" / "data" / "sessions"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.ingestor = self.new_ingestor()

    def new_ingestor(self, homes: list[Path] | None = None) -> Ingestor:
        return Ingestor(
            self.data, Cline(), homes or [self.sessions], IngestOptions("cline", estimate=False)
        )

    def write(self, messages: list[dict[str, Any]], name: str = SID, **kw: Any) -> Path:
        """`writeFileSync(path, JSON.stringify(payload, null, 2) + "\\n")`; the manifest too."""
        folder = self.sessions / SID
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"version": 1, "session_id": SID, "prompt": SECRET, "cwd": "/home/dev/secret"}
        (folder / f"{SID}.json").write_text(json.dumps(manifest, indent=2) + "\n")
        path = folder / f"{name}.messages.json"
        path.write_text(payload(messages, **kw), encoding="utf-8")
        return path

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / "cline.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)

    def ledger_lines(self) -> int:
        return sum(len(p.read_text().splitlines()) for p in self.data.ledger_dir.glob("*.jsonl"))


@pytest.fixture
def v4(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_input_excludes_the_cache_and_the_cost_is_kept(v4: Setup) -> None:
    v4.write(
        [
            user("u1", ms(DAY1)),
            assistant("a1", ms(DAY1, 1), 12040, 456, cr=10000, cw=2000, cost=0.0234),
            assistant("a2", ms(DAY1, 2), 1000, 10, cr=900, cw=300, cost=0.001),  # clamped at 0
            assistant("a3", ms(DAY2), 40, 4),
        ]
    )
    stats = v4.scan()
    assert stats.records == 3 and stats.problems == []
    assert v4.totals() == {
        (DAY1, "cline"): (2, 40, 466, 2300, 10900, 2.44),
        (DAY2, "cline"): (1, 40, 4, 0, 0, 0.0),
    }
    assert sorted(str(e.model) for e in winners(v4.data.ledger_dir)) == ["claude-sonnet-4-5"] * 3


def test_rewrites_add_only_new_messages(v4: Setup) -> None:
    history = [user("u1", ms(DAY1)), assistant("a1", ms(DAY1, 1), 100, 10)]
    v4.write(history)
    assert v4.scan().records == 1
    for _ in range(50):  # persisted again after every turn and UI change
        v4.write(history)
        assert v4.scan().records == 0
    history += [user("u2", ms(DAY1, 2)), assistant("a2", ms(DAY1, 3), 200, 20)]
    v4.write(history)
    assert v4.scan().records == 1
    assert v4.ledger_lines() == 2
    assert v4.new_ingestor().scan().records == 0
    assert v4.totals() == {(DAY1, "cline"): (2, 300, 30, 0, 0, 0.0)}


def test_a_half_written_rewrite_is_retried_then_counted_once(v4: Setup) -> None:
    messages = [user("u1", ms(DAY1)), assistant("a1", ms(DAY1, 1), 5000, 50, cr=4000, cost=0.01)]
    path = v4.write(messages[:1])
    assert v4.scan().records == 0
    path.write_text("", encoding="utf-8")  # writeFileSync has truncated, nothing written yet
    stats = v4.scan()
    assert stats.records == 0 and stats.retry == [path] and stats.problems == []
    body = payload(messages)
    with open(path, "w", encoding="utf-8") as f:
        f.write(body[: len(body) // 2])
        f.flush()
        assert v4.scan().records == 0  # a retry, not an error
        again = v4.scan()  # the same cut file again: said once it persists
        assert again.records == 0 and again.problems and "not valid JSON" in again.problems[0]
        f.write(body[len(body) // 2 :])
    assert v4.scan().records == 1
    assert v4.scan().records == 0
    assert v4.totals() == {(DAY1, "cline"): (1, 1000, 50, 0, 4000, 1.0)}


def test_a_message_given_a_new_id_on_a_rewrite_is_not_counted_again(v4: Setup) -> None:
    v4.write([assistant("nano-1", ms(DAY1, 1), 100, 10)])
    assert v4.scan().records == 1
    v4.write([assistant("nano-2", ms(DAY1, 1), 100, 10)])  # same time, same counts
    assert v4.scan().records == 0
    v4.write([assistant("nano-2", ms(DAY1, 1), 100, 10), assistant("nano-3", ms(DAY1, 1), 100, 10)])
    assert v4.scan().records == 1  # a second message alike: counted
    assert v4.totals() == {(DAY1, "cline"): (2, 200, 20, 0, 0, 0.0)}


def test_grown_counts_of_a_message_replace_its_record(v4: Setup) -> None:
    v4.write([assistant("a1", ms(DAY1, 1), 100, 10)])
    assert v4.scan().records == 1
    v4.write([assistant("a1", ms(DAY2), 100, 40, cost=0.5)])  # the turn's final metrics
    assert v4.scan().records == 1
    assert v4.totals() == {(DAY1, "cline"): (1, 100, 40, 0, 0, 50.0)}  # kept on its first day


def test_subagent_files_and_copied_sessions_count_once(v4: Setup, tmp_path: Path) -> None:
    lead = [user("u1", ms(DAY1)), assistant("a1", ms(DAY1, 1), 100, 10)]
    v4.write(lead)
    # a subagent's file beside it, under the root's sessionId, repeating the parent's turn
    sub = [*lead, assistant("s1", ms(DAY1, 2), 30, 3)]
    v4.write(sub, name="agent_7f3a", agent="subagent")
    copy = tmp_path / "backup" / "sessions"
    shutil.copytree(v4.sessions / SID, copy / SID)
    stats = v4.new_ingestor([v4.sessions, copy]).scan()
    assert stats.files == 4 and stats.records == 6
    assert v4.totals() == {(DAY1, "cline"): (2, 130, 13, 0, 0, 0.0)}


def test_times_without_a_ts_or_as_text(v4: Setup) -> None:
    path = v4.write(
        [
            assistant("a1", "2026-03-02T08:00:00.000Z", 10, 1),
            assistant("a2", None, 20, 2),
            assistant(None, ms(DAY1), 30, 3),
        ]
    )
    os.utime(path, (ms(DAY1) / 1000, ms(DAY1) / 1000))  # a2's day: the file's, when first read
    assert v4.scan().records == 3
    assert v4.totals() == {
        (DAY1, "cline"): (2, 50, 5, 0, 0, 0.0),
        (DAY2, "cline"): (1, 10, 1, 0, 0, 0.0),
    }


def test_unreadable_messages_are_named_and_the_rest_read(v4: Setup) -> None:
    bad = [
        assistant("b1", ms(DAY1), -5, 1),
        assistant("b2", ms(DAY1), "many", 1),  # type: ignore[arg-type]
        {**assistant("b3", ms(DAY1), 1, 1), "metrics": [1, 2]},
        assistant("b4", "yesterday", 1, 1),
        "not a message",
    ]
    v4.write([assistant("a1", ms(DAY1), 10, 1), *bad])  # type: ignore[list-item]
    stats = v4.scan()
    assert stats.records == 1
    assert [p for p in stats.problems if "skipped 4 unreadable assistant messages" in p]
    assert v4.totals() == {(DAY1, "cline"): (1, 10, 1, 0, 0, 0.0)}


def test_another_file_version_is_named(v4: Setup) -> None:
    folder = v4.sessions / "other"
    folder.mkdir(parents=True)
    (folder / "other.messages.json").write_text(json.dumps({"version": 2, "messages": []}))
    (folder / "list.messages.json").write_text(json.dumps([assistant("a1", ms(DAY1), 1, 1)]))
    stats = v4.scan()
    assert stats.records == 0
    assert sorted(stats.problems) == [
        "list.messages.json: not a Cline messages file (no messages)",
        "other.messages.json: messages file version 2: this version reads 1",
    ]


def test_nothing_private_reaches_the_data_folder(v4: Setup) -> None:
    v4.write([user("u1", ms(DAY1)), assistant("a1", ms(DAY1, 1), 100, 10)])
    assert v4.scan().records == 1
    stored = all_files_text(v4.data.home)
    for secret in (SECRET, "secret-project", "billing", SID, "You are Cline", "anthropic"):
        assert secret not in stored, secret
    assert Checkpoints(v4.checkpoint).files  # what was counted, by hashed file and message id


def test_both_stores_in_one_source(tmp_path: Path) -> None:
    storage = tmp_path / "globalStorage" / "saoudrizwan.claude-dev"
    task = storage / "tasks" / "1772359200000" / "ui_messages.json"
    task.parent.mkdir(parents=True)
    task.write_text(compact([text(ms(DAY1)), cline_request(ms(DAY1, 1), **usage(10, 1))]))
    setup = Setup(tmp_path)
    setup.write([assistant("a1", ms(DAY1, 2), 100, 10)])
    source = Cline()
    assert source.watch_dirs([storage, setup.sessions]) == [storage / "tasks", setup.sessions]
    stats = setup.new_ingestor([storage, setup.sessions]).scan()
    assert stats.files == 2 and stats.records == 2
    assert setup.totals() == {(DAY1, "cline"): (2, 110, 11, 0, 0, 0.0)}


def test_sessions_folder(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path / "h")}
    assert sessions_dir(home) == tmp_path / "h" / ".cline" / "data" / "sessions"
    assert sessions_dir({**home, "CLINE_DIR": str(tmp_path / "c")}) == (
        tmp_path / "c" / "data" / "sessions"
    )
    assert (
        sessions_dir({**home, "CLINE_DATA_DIR": str(tmp_path / "d")}) == tmp_path / "d" / "sessions"
    )
    explicit = {**home, "CLINE_DATA_DIR": "x", "CLINE_SESSION_DATA_DIR": str(tmp_path / "s")}
    assert sessions_dir(explicit) == tmp_path / "s"
    dot = tmp_path / "dot-cline"
    (dot / "data" / "sessions").mkdir(parents=True)
    assert ClineSessions().homes(str(dot), {}) == [dot, dot / "data" / "sessions"]
    assert ClineSessions().wants(dot / SID / f"{SID}.messages.json")
    assert not ClineSessions().wants(dot / SID / f"{SID}.json")
    assert not ClineSessions().wants(dot / SID / ".messages.json")


def test_cli_scan_then_report(home: Path, tmp_path: Path) -> None:
    dot = tmp_path / "dot-cline"
    d2 = date_ago(2)
    folder = dot / "data" / "sessions" / SID
    folder.mkdir(parents=True)
    (folder / f"{SID}.messages.json").write_text(
        payload([user("u1", ms(d2)), assistant("a1", ms(d2, 1), 12040, 456, 10000, 2000, 0.0234)])
    )
    done = run_cli(home, "scan", "--source", "cline", "--path", str(dot))
    assert done.returncode == 0, done.stderr
    assert "cline: 1 file, 1 record" in done.stdout
    assert (
        "cline: 1 file, 0 records"
        in run_cli(home, "scan", "--source", "cline", "--path", str(dot)).stdout
    )
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert days[(d2, "cline")] == {
        "events": 1,
        "input_tokens": 40,
        "output_tokens": 456,
        "cache_write_tokens": 2000,
        "cache_read_tokens": 10000,
        "spend_cents": 2.34,
    }
