"""Cline, Roo Code and Kilo Code sources: `ui_messages.json` rewritten whole, counted once.

Fixtures are written as the extensions write them (one compact JSON array, the usage as a JSON
string inside `text`), including their write patterns: Cline's in-place `writeFile`, its temp file
and rename, Roo's lock folder and rename dance. Each test drives the real `Ingestor` on a temporary
data folder and reads the ledger back.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.cline import Cline, KiloCode, RooCode, user_data_dirs
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.harness import cli_json, date_ago, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import Tally, ledger_tallies

TASK = "1763632800000"  # Cline names a task folder by its creation time
SECRET = "fix the bug in /home/dev/secret-project/payroll.py"
#: (events, input, output, cache writes, cache reads, spend in cents)


def at(day: str, seconds: int = 0) -> int:
    """The ms epoch (a message's `ts`) at 10:00 UTC on `day` (YYYY-MM-DD), plus `seconds`."""
    y, m, d = (int(p) for p in day.split("-"))
    return (int(datetime(y, m, d, 10, tzinfo=timezone.utc).timestamp()) + seconds) * 1000


DAY1, DAY2 = "2025-11-20", "2025-11-21"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def text(ts: int, body: str = SECRET) -> dict[str, Any]:
    return {"ts": ts, "type": "say", "say": "text", "text": body}


def roo_request(ts: int, protocol: str | None = "anthropic", **counts: Any) -> dict[str, Any]:
    """Roo's `api_req_started`: the placeholder has only `apiProtocol`, counts come later."""
    info: dict[str, Any] = {} if protocol is None else {"apiProtocol": protocol}
    info.update(counts)
    return {"ts": ts, "type": "say", "say": "api_req_started", "text": compact(info)}


def cline_request(
    ts: int,
    model: str | None = "claude-sonnet-4-20250514",
    provider: str = "anthropic",
    **counts: Any,
) -> dict[str, Any]:
    """Cline's `api_req_started`: `request` (the prompt) in the text, `modelInfo` on the message."""
    message: dict[str, Any] = {
        "ts": ts,
        "type": "say",
        "say": "api_req_started",
        "text": compact({"request": f"<task>\n{SECRET}\n</task>", **counts}),
    }
    if model is not None:
        message["modelInfo"] = {"providerId": provider, "modelId": model, "mode": "act"}
    message["conversationHistoryIndex"] = 1
    return message


def deleted(ts: int, say: str = "api_req_deleted", **counts: Any) -> dict[str, Any]:
    return {"ts": ts, "type": "say", "say": say, "text": compact(counts)}


def usage(tin: int, tout: int, cw: int = 0, cr: int = 0, cost: float | None = None) -> Any:
    counts: dict[str, Any] = {
        "tokensIn": tin,
        "tokensOut": tout,
        "cacheWrites": cw,
        "cacheReads": cr,
    }
    if cost is not None:
        counts["cost"] = cost
    return counts


class Setup:
    """A fake global-storage folder of one extension and a data folder for our ledger."""

    def __init__(self, tmp_path: Path, source: Source) -> None:
        self.storage = tmp_path / "globalStorage" / "ext"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.source = source
        self.ingestor = self.new_ingestor()

    def new_ingestor(self, source: Source | None = None) -> Ingestor:
        """A fresh reader (as after a restart) unless `source` is given."""
        src = source or type(self.source)()
        return Ingestor(self.data, src, [self.storage], IngestOptions(src.label, estimate=False))

    def messages_file(self, task: str = TASK) -> Path:
        path = self.storage / "tasks" / task / "ui_messages.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, messages: list[dict[str, Any]], task: str = TASK) -> Path:
        """Cline < 3.40: `fs.writeFile(path, JSON.stringify(messages))` (in place)."""
        path = self.messages_file(task)
        path.write_text(compact(messages), encoding="utf-8")
        return path

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / f"{self.source.label}.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)

    def models(self) -> list[str | None]:
        models = [e.model for e in winners(self.data.ledger_dir)]
        return sorted(models, key=lambda m: (m is None, m or ""))

    def ledger_lines(self) -> int:
        return sum(len(p.read_text().splitlines()) for p in self.data.ledger_dir.glob("*.jsonl"))

    def ledger_text(self) -> str:
        return "".join(p.read_text() for p in self.data.ledger_dir.glob("*.jsonl"))


@pytest.fixture
def roo(tmp_path: Path) -> Setup:
    return Setup(tmp_path, RooCode())


@pytest.fixture
def cline(tmp_path: Path) -> Setup:
    return Setup(tmp_path, Cline())


# -- rewrites ---------------------------------------------------------------------------------


def test_cline_rewrites_with_growing_values_count_once(cline: Setup) -> None:
    t1, t2 = at(DAY1), at(DAY1, 30)
    history = [text(t1 - 1000)]
    cline.write([*history, cline_request(t1)])  # the placeholder: no counts yet
    assert cline.scan().records == 0
    assert cline.ledger_lines() == 0

    cline.write([*history, cline_request(t1, **usage(100, 10, 2000, 0, cost=0.01))])
    assert cline.scan().records == 1
    # the same request rewritten as the stream goes on: same ts, values grow
    cline.write([*history, cline_request(t1, **usage(100, 50, 2000, 0, cost=0.02))])
    assert cline.scan().records == 1
    cline.write(
        [*history, cline_request(t1, **usage(100, 90, 2000, 0, cost=0.03)), cline_request(t2)]
    )
    assert cline.scan().records == 1
    final = [
        *history,
        cline_request(t1, **usage(100, 90, 2000, 0, cost=0.03)),
        cline_request(t2, **usage(7, 3, 0, 2000, cost=0.001)),
    ]
    cline.write(final)
    assert cline.scan().records == 1
    lines = cline.ledger_lines()
    for _ in range(300):  # Cline rewrites the whole file on every UI change
        cline.write(final)
        assert cline.scan().records == 0
    assert cline.ledger_lines() == lines
    assert cline.totals() == {(DAY1, "cline"): (2, 107, 93, 2000, 2000, 3.1)}


def test_a_same_size_rewrite_in_place_keeping_its_mtime_is_still_read(cline: Setup) -> None:
    t1 = at(DAY1)
    path = cline.write([cline_request(t1, **usage(100, 456))])
    assert cline.scan().records == 1
    before = os.stat(path)
    cline.write([cline_request(t1, **usage(100, 789))])  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # within one mtime tick
    assert os.stat(path).st_size == before.st_size
    assert cline.scan().records == 1
    assert cline.totals() == {(DAY1, "cline"): (1, 100, 789, 0, 0, 0.0)}


def test_cline_non_atomic_write_is_retried_then_counted_once(cline: Setup) -> None:
    t1 = at(DAY1)
    messages = [text(t1 - 1000), cline_request(t1, **usage(40, 456, 2000, 10000, cost=0.0234))]
    path = cline.messages_file()
    path.write_text("", encoding="utf-8")  # `writeFile` has truncated, nothing written yet
    stats = cline.scan()
    assert stats.records == 0 and stats.problems == []
    assert not Checkpoints(cline.checkpoint).files  # nothing checkpointed

    body = compact(messages)
    with open(path, "w", encoding="utf-8") as f:
        f.write(body[: len(body) // 2])  # half written
        f.flush()
        assert cline.scan().records == 0  # a retry, not an error
        assert cline.scan().problems  # the same cut file again: said once it persists
        assert not Checkpoints(cline.checkpoint).files
        f.write(body[len(body) // 2 :])
    assert cline.scan().records == 1
    assert cline.scan().records == 0
    assert cline.totals() == {(DAY1, "cline"): (1, 40, 456, 2000, 10000, 2.34)}


def test_cline_atomic_write_through_a_temp_file(cline: Setup) -> None:
    t1 = at(DAY1)
    target = cline.messages_file()
    for tokens_out in (10, 20, 30):  # Cline >= 3.40: temp file, then rename over the target
        temp = target.with_name(f"ui_messages.json.tmp.{t1}.k3j2h1.json")
        temp.write_text(compact([cline_request(t1, **usage(5, tokens_out))]), encoding="utf-8")
        assert not cline.source.wants(temp)
        assert cline.ingestor.ingest_paths([temp]).records == 0  # a hint on the temp name
        os.replace(temp, target)
        assert cline.ingestor.ingest_paths([target]).records == 1
    assert cline.totals() == {(DAY1, "cline"): (1, 5, 30, 0, 0, 0.0)}


def test_roo_rename_dance_never_loses_state_or_double_counts(roo: Setup) -> None:
    t1, t2, t3 = at(DAY1), at(DAY1, 60), at(DAY1, 120)
    r1, r2, r3 = usage(12040, 456, 2000, 10000), usage(3000, 100), usage(500, 50)
    target = roo.write([text(t1 - 1000), roo_request(t1, **r1), roo_request(t2, **r2)])
    assert roo.scan().records == 2

    # a checkpoint restore to before t2, saved with safeWriteJson:
    task = target.parent
    lock = task / "ui_messages.json.lock"
    lock.mkdir()  # proper-lockfile's lock is a folder
    new = task / f".ui_messages.json.new_{t3}_a1b2c3.tmp"
    new.write_text(
        compact(
            [
                text(t1 - 1000),
                roo_request(t1, **r1),
                deleted(t3, **r2),  # summed tokens of the removed request, new ts
            ]
        ),
        encoding="utf-8",
    )
    backup = task / f".ui_messages.json.bak_{t3}_d4e5f6.tmp"
    os.rename(target, backup)
    # between the renames the file is missing: a scan retries and keeps the state
    for path in (lock, new, backup):
        assert not roo.source.wants(path)
    assert roo.ingestor.ingest_paths([lock, new, backup]).records == 0
    assert roo.ingestor.ingest_paths([target]).records == 0
    assert roo.scan().records == 0
    assert Checkpoints(roo.checkpoint).state(target)["rows"]  # not forgotten while missing
    os.rename(new, target)
    backup.unlink()
    lock.rmdir()
    assert roo.scan().records == 0  # the removed request was counted: the summary is not
    assert roo.new_ingestor().scan().records == 0  # nor after a restart

    # the conversation goes on after the rewind
    roo.write(
        [text(t1 - 1000), roo_request(t1, **r1), deleted(t3, **r2), roo_request(t3 + 5, **r3)]
    )
    assert roo.scan().records == 1
    assert roo.totals() == {(DAY1, "roo-code"): (3, 40 + 3000 + 500, 606, 2000, 10000, 0.0)}


# -- rewinds ----------------------------------------------------------------------------------


def test_api_req_deleted_after_its_requests_were_counted_is_not_counted(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(5)]
    r = [usage(1000 * (i + 1), 10 * (i + 1), cost=0.01 * (i + 1)) for i in range(3)]
    roo.write([text(t[0]), *(roo_request(t[i + 1], **r[i]) for i in range(3))])
    assert roo.scan().records == 3
    summary = {k: r[1][k] + r[2][k] for k in r[1]}
    roo.write([text(t[0]), roo_request(t[1], **r[0]), deleted(t[4], **summary)])
    assert roo.scan().records == 0
    assert roo.totals() == {(DAY1, "roo-code"): (3, 6000, 60, 0, 0, 6.0)}


def test_api_req_deleted_seen_first_counts_whole(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(5)]
    r = [usage(1000 * (i + 1), 10 * (i + 1), cost=0.01 * (i + 1)) for i in range(3)]
    summary = {k: r[1][k] + r[2][k] for k in r[1]}
    # this reader's first look is after the rewind: the removed requests were never counted
    roo.write([text(t[0]), roo_request(t[1], **r[0]), deleted(t[4], **summary)])
    assert roo.scan().records == 2
    assert roo.scan().records == 0
    assert roo.new_ingestor().scan().records == 0
    assert roo.totals() == {(DAY1, "roo-code"): (2, 6000, 60, 0, 0, 6.0)}


def test_api_req_deleted_counts_only_what_was_not_counted(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(5)]
    r = [usage(1000 * (i + 1), 10 * (i + 1)) for i in range(3)]
    roo.write([text(t[0]), roo_request(t[1], **r[0]), roo_request(t[2], **r[1])])
    assert roo.scan().records == 2
    # r[2] came and was rewound before this reader looked: the summary holds r[1] + r[2]
    summary = {k: r[1][k] + r[2][k] for k in r[1]}
    roo.write([text(t[0]), roo_request(t[1], **r[0]), deleted(t[4], **summary)])
    assert roo.scan().records == 1
    assert roo.totals() == {(DAY1, "roo-code"): (3, 6000, 60, 0, 0, 0.0)}


def test_a_summary_covers_only_the_requests_after_its_restore_point(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(7)]
    a, b, c, d, e = (usage(100 * (i + 1), i + 1) for i in range(5))
    roo.write([text(t[0]), roo_request(t[1], **a), roo_request(t[2], **b)])
    assert roo.scan().records == 2
    # b deleted without a summary (counted, gone), then c and d
    roo.write([text(t[0]), roo_request(t[1], **a), roo_request(t[3], **c), roo_request(t[4], **d)])
    assert roo.scan().records == 2
    # e came and went unseen: a rewind to after c sums d + e; b is not part of it
    summary = {k: d[k] + e[k] for k in d}
    roo.write(
        [text(t[0]), roo_request(t[1], **a), roo_request(t[3], **c), deleted(t[6], **summary)]
    )
    assert roo.scan().records == 1
    assert roo.totals() == {(DAY1, "roo-code"): (5, 1500, 15, 0, 0, 0.0)}


def test_cline_nested_rewind_summaries_are_not_double_counted(cline: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(8)]
    a, b, c, d = usage(100, 1), usage(200, 2), usage(300, 3), usage(400, 4)
    cline.write(
        [
            text(t[0]),
            cline_request(t[1], **a),
            cline_request(t[2], **b),
            cline_request(t[3], **c),
        ]
    )
    assert cline.scan().records == 3
    first = deleted(t[4], "deleted_api_reqs", **c)
    cline.write([text(t[0]), cline_request(t[1], **a), cline_request(t[2], **b), first])
    assert cline.scan().records == 0
    cline.write(
        [
            text(t[0]),
            cline_request(t[1], **a),
            cline_request(t[2], **b),
            first,
            cline_request(t[5], **d),
        ]
    )
    assert cline.scan().records == 1
    # back to before b: Cline's summary includes the earlier summary (c) and b, d
    nested = {k: b[k] + c[k] + d[k] for k in b}
    cline.write([text(t[0]), cline_request(t[1], **a), deleted(t[6], "deleted_api_reqs", **nested)])
    assert cline.scan().records == 0
    assert cline.totals() == {(DAY1, "cline"): (4, 1000, 10, 0, 0, 0.0)}


# -- tokensIn and apiProtocol -----------------------------------------------------------------

AFTER_FIX, BEFORE_FIX = "2025-11-20", "2025-10-01"  # Roo 3.29.5 shipped on 2025-10-31


@pytest.mark.parametrize(
    ("source", "day", "message", "expected_input"),
    [
        (RooCode, AFTER_FIX, roo_request(0, "openai", **usage(12000, 1, 2000, 9000)), 1000),
        (RooCode, AFTER_FIX, roo_request(0, "openai", **usage(500, 1, 2000, 0)), 0),  # clamped
        (RooCode, AFTER_FIX, roo_request(0, "anthropic", **usage(12040, 1, 2000, 10000)), 40),
        (RooCode, AFTER_FIX, roo_request(0, "anthropic", **usage(40, 1, 2000, 10000)), 40),
        (RooCode, BEFORE_FIX, roo_request(0, "anthropic", **usage(12040, 1, 2000, 10000)), 12040),
        (RooCode, AFTER_FIX, roo_request(0, None, **usage(12040, 1, 2000, 10000)), 40),
        (RooCode, AFTER_FIX, roo_request(0, None, **usage(40, 1, 2000, 10000)), 40),
        (KiloCode, AFTER_FIX, roo_request(0, "anthropic", **usage(12040, 1, 2000, 10000)), 40),
        (KiloCode, AFTER_FIX, roo_request(0, "openai", **usage(12040, 1, 2000, 10000)), 40),
        (Cline, AFTER_FIX, cline_request(0, **usage(12040, 1, 2000, 10000)), 12040),
        (Cline, AFTER_FIX, cline_request(0, provider="openai", **usage(12040, 1, 2000, 10000)), 40),
        (Cline, AFTER_FIX, cline_request(0, **usage(40, 1, 0, 0)), 40),
    ],
)
def test_input_rule(
    tmp_path: Path, source: type[Source], day: str, message: dict[str, Any], expected_input: int
) -> None:
    setup = Setup(tmp_path, source())
    setup.write([text(at(day) - 1), {**message, "ts": at(day)}])
    assert setup.scan().records == 1
    info = json.loads(message["text"])
    assert setup.totals() == {
        (day, source.label): (1, expected_input, 1, info["cacheWrites"], info["cacheReads"], 0.0)
    }


def test_cline_api_protocol_openai_in_the_text_includes_the_cache(cline: Setup) -> None:
    message = cline_request(at(DAY1), **usage(12040, 1, 2000, 10000))
    message["text"] = compact({**json.loads(message["text"]), "apiProtocol": "openai"})
    cline.write([message])
    assert cline.scan().records == 1
    assert cline.totals()[(DAY1, "cline")][1] == 40


# -- placeholders, models, restarts, crashes ---------------------------------------------------


def test_placeholders_are_not_emitted_until_rewritten(roo: Setup) -> None:
    t1 = at(DAY1)
    roo.write([text(t1 - 1), roo_request(t1, "anthropic"), roo_request(t1 + 1, None)])
    stats = roo.scan()
    assert stats.records == 0 and stats.skipped == 0 and roo.ledger_lines() == 0
    roo.write([text(t1 - 1), roo_request(t1, "anthropic", **usage(10, 5)), roo_request(t1 + 1)])
    assert roo.scan().records == 1
    assert roo.totals() == {(DAY1, "roo-code"): (1, 10, 5, 0, 0, 0.0)}


def test_model_from_model_info_or_the_request_text(roo: Setup, tmp_path: Path) -> None:
    t1 = at(DAY1)
    roo.write(
        [
            roo_request(t1, **usage(1, 1), modelId="gpt-5"),
            roo_request(t1 + 1, **usage(1, 1), model="kimi-k2"),
            roo_request(t1 + 2, **usage(1, 1)),
        ]
    )
    roo.scan()
    assert roo.models() == ["gpt-5", "kimi-k2", None]
    cline = Setup(tmp_path / "c", Cline())
    cline.write([cline_request(t1, **usage(1, 1))])
    cline.scan()
    assert cline.models() == ["claude-sonnet-4-20250514"]


def test_restart_on_the_same_history_adds_nothing(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(4)] + [at(DAY2)]
    for task in ("1763632800000", "1763632900000"):
        roo.write(
            [text(t[0]), *(roo_request(ts, **usage(100, 10, 5, 7, cost=0.5)) for ts in t[1:])],
            task=task,
        )
    assert roo.scan().records == 8
    before, lines = roo.totals(), roo.ledger_lines()
    for _ in range(2):
        again = roo.new_ingestor()
        assert again.scan().records == 0
    assert roo.totals() == before and roo.ledger_lines() == lines
    assert before == {
        (DAY1, "roo-code"): (6, 6 * 88, 60, 30, 42, 300.0),
        (DAY2, "roo-code"): (2, 2 * 88, 20, 10, 14, 100.0),
    }


def test_a_crash_between_the_ledger_and_the_checkpoint_counts_nothing_twice(roo: Setup) -> None:
    t = [at(DAY1, 60 * i) for i in range(6)]
    r = [usage(1000, 10 * (i + 1), cost=0.25) for i in range(3)]
    roo.write([text(t[0]), *(roo_request(t[i + 1], **r[i]) for i in range(3))])
    assert roo.scan().records == 3
    saved = roo.checkpoint.read_bytes()
    summary = {k: r[1][k] + r[2][k] for k in r[1]}
    expected = {(DAY1, "roo-code"): (3, 3000, 99 + 20 + 30, 0, 0, 75.0)}

    # the first crash: nothing of the first read checkpointed
    checkpoint = roo.checkpoint
    checkpoint.unlink()
    crashed = roo.new_ingestor()
    roo.write([text(t[0]), *(roo_request(t[i + 1], **r[i]) for i in range(3))])
    assert crashed.scan().records == 3  # read again: the same events
    roo.write(
        [text(t[0]), roo_request(t[1], **{**r[0], "tokensOut": 99}), deleted(t[5], **summary)]
    )
    assert crashed.scan().records == 1  # the grown request; the summary is not counted
    assert roo.totals() == expected

    # the second crash: the rewind's events reached the ledger, its checkpoint did not
    checkpoint.write_bytes(saved)
    assert roo.new_ingestor().scan().records == 1
    assert roo.new_ingestor().scan().records == 0
    assert roo.totals() == expected


# -- where the files are, what is kept ----------------------------------------------------------


def test_homes_are_every_existing_global_storage_folder(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg), "APPDATA": str(tmp_path / "appdata")}
    storage = [
        xdg / "Code" / "User" / "globalStorage" / "rooveterinaryinc.roo-cline",
        xdg / "Cursor" / "User" / "globalStorage" / "rooveterinaryinc.roo-cline",
        home / ".vscode-server" / "data" / "User" / "globalStorage" / "rooveterinaryinc.roo-cline",
        xdg / "Windsurf" / "User" / "globalStorage" / "saoudrizwan.claude-dev",
        home / ".cursor-server" / "data" / "User" / "globalStorage" / "kilocode.kilo-code",
    ]
    for path in storage:
        (path / "tasks").mkdir(parents=True)
    if sys.platform.startswith("linux"):
        assert RooCode().homes("", env) == storage[:3]
        # and the newer stores: Cline 4's sessions, the rebuilt Kilo Code's database folder
        assert Cline().homes("", env) == [storage[3], home / ".cline" / "data" / "sessions"]
        assert KiloCode().homes("", env) == [storage[4], home / ".local" / "share" / "kilo"]
    configured = tmp_path / "custom"
    assert RooCode().homes(str(configured), env) == [configured]
    assert RooCode().homes(str(configured / "tasks"), env) == [configured]
    # nothing installed: where it would be (so `sources` can say "not found")
    empty = {"HOME": str(tmp_path / "nobody"), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    assert Cline().homes("", empty) == [
        tmp_path / "none" / "Code" / "User" / "globalStorage" / "saoudrizwan.claude-dev",
        tmp_path / "nobody" / ".cline" / "data" / "sessions",
    ]


def test_user_data_dirs_per_platform(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "APPDATA": str(tmp_path / "Roaming")}
    mac = user_data_dirs(env, "darwin")
    assert mac[:5] == [
        home / "Library" / "Application Support" / p
        for p in ("Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf")
    ]
    win = user_data_dirs(env, "win32")
    assert win[0] == tmp_path / "Roaming" / "Code" and win[3] == tmp_path / "Roaming" / "Cursor"
    linux = user_data_dirs({"HOME": str(home)}, "linux")
    assert linux[0] == home / ".config" / "Code"
    servers = [home / s / "data" for s in (".vscode-server", ".vscode-server-insiders")]
    assert all(s in linux and s in mac for s in servers)
    assert home / ".cursor-server" / "data" in linux


def test_files_and_wants(roo: Setup) -> None:
    roo.write([roo_request(at(DAY1), **usage(1, 1))], task="b")
    roo.write([roo_request(at(DAY1), **usage(1, 1))], task="a")
    (roo.storage / "tasks" / "c").mkdir()  # a task without messages yet
    (roo.storage / "tasks" / "a" / "api_conversation_history.json").write_text("[]")
    found = list(roo.source.files([roo.storage, roo.storage]))
    assert found == [roo.storage / "tasks" / t / "ui_messages.json" for t in ("a", "b")]
    task = roo.storage / "tasks" / "a"
    assert roo.source.wants(task / "ui_messages.json")
    for name in (
        "api_conversation_history.json",
        "ui_messages.json.lock",
        ".ui_messages.json.new_1763632800123_x1y2z3.tmp",
        ".ui_messages.json.bak_1763632800123_x1y2z3.tmp",
        "ui_messages.json.tmp.1763632800123.k3j2h1.json",
        "task_metadata.json",
    ):
        assert not roo.source.wants(task / name), name
    assert roo.source.watch_dirs([roo.storage]) == [roo.storage / "tasks"]


def test_only_counts_and_hashed_keys_are_kept(cline: Setup) -> None:
    task = "secret-task-4b1d"
    cline.write([text(at(DAY1) - 1), cline_request(at(DAY1), **usage(1, 2))], task=task)
    assert cline.scan().records == 1
    ledger = cline.ledger_text()
    for secret in ("secret", "payroll", "<task>", task, str(at(DAY1)), "saoudrizwan", "anthropic"):
        assert secret not in ledger, secret
    checkpoint = cline.checkpoint.read_text()  # no text of the task
    assert "payroll" not in checkpoint and "request" not in checkpoint


def test_unreadable_usage_is_skipped_and_named(roo: Setup) -> None:
    t1 = at(DAY1)
    bad_text = {"ts": t1 + 1, "type": "say", "say": "api_req_started", "text": "{not json"}
    negative = roo_request(t1 + 2, **usage(-5, 1))
    roo.write([roo_request(t1, **usage(10, 1)), bad_text, negative, "not a message", {"ts": "x"}])
    stats = roo.scan()
    assert stats.records == 1
    assert any("skipped 2 unreadable" in p for p in stats.problems)
    assert roo.totals() == {(DAY1, "roo-code"): (1, 10, 1, 0, 0, 0.0)}


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_scan_then_report_and_sources(home: Path, tmp_path: Path) -> None:
    storage = tmp_path / "roo"
    d2, d3 = date_ago(2), date_ago(3)
    for task, day in (("t1", d2), ("t2", d3)):
        path = storage / "tasks" / task / "ui_messages.json"
        path.parent.mkdir(parents=True)
        path.write_text(
            compact(
                [
                    text(at(day) - 1),
                    roo_request(at(day), "anthropic", **usage(12040, 456, 2000, 10000, 0.0234)),
                    roo_request(at(day, 5), "openai", **usage(1500, 44, 0, 1000, 0.0066)),
                ]
            )
        )
    done = run_cli(home, "scan", "--source", "roo-code", "--path", str(storage))
    assert done.returncode == 0, done.stderr
    assert "roo-code: 2 files, 4 records" in done.stdout
    again = run_cli(home, "scan", "--source", "roo-code", "--path", str(storage))
    assert "roo-code: 2 files, 0 records" in again.stdout
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    for day in (d2, d3):
        assert days[(day, "roo-code")] == {
            "events": 2,
            "input_tokens": 540,
            "output_tokens": 500,
            "cache_write_tokens": 2000,
            "cache_read_tokens": 11000,
            "spend_cents": 3.0,
        }
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert {"cline", "roo-code", "kilo-code", "continue"} <= set(sources)
    assert sources["roo-code"]["name"] == "rooCode" and sources["kilo-code"]["name"] == "kiloCode"
    assert sources["roo-code"]["records"] == 4 and sources["roo-code"]["lastScan"]
    assert sources["cline"]["enabled"] is False and sources["cline"]["tool"] == "cline"
