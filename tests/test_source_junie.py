"""JetBrains Junie: `~/.junie/sessions/<session>/events.jsonl`, an appended event log.

Junie cannot run here: the lines follow the shape its one peer reads (`LlmResponseMetadataEvent`
with `modelUsage[]` and `timestampMs`), among other agent events that carry the conversation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor
from dx_lsp_telemetry.sources.junie import Junie
from tests.ledger_oracle import winners
from tests.running_tools import CANARY
from tests.source_logs import ledger_tallies

SESSION = "session-251120-100000"
T1 = 1763632800000  # 2025-11-20T10:00:00Z
DAY = "2025-11-20"


def usage_event(stamp: int, *usages: dict[str, Any]) -> str:
    line = {
        "kind": "AgentEvent",
        "timestampMs": stamp,
        "event": {
            "agentEvent": {
                "kind": "LlmResponseMetadataEvent",
                "agent": {"name": "junie"},
                "modelUsage": list(usages),
                "text": CANARY,
            }
        },
    }
    return json.dumps(line, separators=(",", ":")) + "\n"


def usage(
    model: str, inp: int, out: int, cr: int = 0, cw: int = 0, cost: float = 0.0
) -> dict[str, Any]:
    return {
        "model": model,
        "provider": "anthropic",
        "inputTokens": inp,
        "outputTokens": out,
        "cacheInputTokens": cr,
        "cacheCreateTokens": cw,
        "cost": cost,
        "time": 1200,
    }


def other_event(stamp: int) -> str:
    line = {"kind": "UserPromptEvent", "timestampMs": stamp, "prompt": f"fix {CANARY}"}
    return json.dumps(line, separators=(",", ":")) + "\n"


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "junie"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.ingestor = self.process()

    def process(self) -> Ingestor:
        return Ingestor(self.data, Junie(), [self.root], IngestOptions("junie", False))

    def append(self, text: str, session: str = SESSION) -> Path:
        path = self.root / "sessions" / session / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(text)
        return path


@pytest.fixture
def junie(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_each_model_call_once_with_its_cost(junie: Setup) -> None:
    junie.append(
        other_event(T1 - 5000)
        + usage_event(T1, usage("claude-sonnet-4-5", 1000, 50, cr=800, cw=100, cost=0.0123))
        + usage_event(T1 + 9000, usage("gpt-5", 300, 30), usage("gpt-5", 300, 30))
    )
    stats = junie.ingestor.scan()
    assert (stats.records, stats.problems) == (3, [])
    tally = ledger_tallies(junie.data)[(DAY, "junie")]
    assert tally[:5] == (3, 1600, 110, 100, 800)
    assert tally[5] == pytest.approx(1.23)
    assert junie.ingestor.scan().records == 0


def test_a_replayed_event_and_a_copied_session_count_once(junie: Setup) -> None:
    event = usage_event(T1, usage("claude-sonnet-4-5", 1000, 50))
    path = junie.append(event + event)  # Junie wrote the same event twice
    junie.ingestor.scan()
    copy = junie.root / "sessions-backup" / SESSION / "events.jsonl"
    copy.parent.mkdir(parents=True)
    shutil.copy(path, copy)
    junie.ingestor.homes = [junie.root, junie.root.parent / "elsewhere"]
    (junie.root.parent / "elsewhere" / "sessions" / SESSION).mkdir(parents=True)
    shutil.copy(path, junie.root.parent / "elsewhere" / "sessions" / SESSION / "events.jsonl")
    junie.ingestor.scan()
    junie.ingestor.checkpoints.path.unlink()
    junie.process().scan()
    assert ledger_tallies(junie.data)[(DAY, "junie")][:3] == (1, 1000, 50)


def test_bad_lines_are_named_and_the_rest_is_read(junie: Setup) -> None:
    junie.append(
        usage_event(T1, usage("m", 10, 1))
        + usage_event(0, usage("m", 10, 1))
        + usage_event(T1 + 1, {"model": "m", "inputTokens": "ten"})
        + '{"event":{"agentEvent":{"kind":"LlmResponseMetadataEvent"'
        + "\n"
        + usage_event(T1 + 2, usage("m", 5, 1))
    )
    stats = junie.ingestor.scan()
    assert stats.records == 2
    assert len(stats.problems) == 1
    assert stats.problems[0].startswith("events.jsonl: skipped 3 unreadable usage lines (byte ")


def test_nothing_private_is_stored(junie: Setup) -> None:
    junie.append(other_event(T1) + usage_event(T1, usage("gpt-5", 10, 1)), session=SESSION)
    junie.ingestor.scan()
    stored = "".join(p.read_text() for p in junie.data.home.rglob("*.json*"))
    assert CANARY not in stored and SESSION not in stored and "sessions" not in stored
    assert [e.model for e in winners(junie.data.ledger_dir)] == ["gpt-5"]


def test_homes_and_wants(tmp_path: Path) -> None:
    source = Junie()
    assert source.homes("", {"HOME": str(tmp_path)}) == [tmp_path / ".junie"]
    assert source.homes(str(tmp_path / "j" / "sessions"), {}) == [tmp_path / "j"]
    assert source.wants(tmp_path / ".junie" / "sessions" / SESSION / "events.jsonl")
    assert not source.wants(tmp_path / ".junie" / "sessions" / "events.jsonl")
