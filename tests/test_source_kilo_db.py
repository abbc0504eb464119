"""The rebuilt Kilo Code's `kilo.db` in the `kiloCode` source, beside the legacy tasks.

The extension >= 7.2.21 runs on Kilo's CLI, a fork of OpenCode: same schema, same step-finish
parts (`tests/opencode_logs.py`). It can import the legacy extension's tasks and Roo Code's; the
importer (Kilo-Org/kilocode `legacy-migration/sessions`) derives the session, message and part
ids from the task id (`ses_`/`msg_`/`prt_` + 26 hex of a SHA-1; `roo:<task>` for Roo Code's),
keeps the task id as the slug, and writes the conversation without usage, under provider and
model "legacy". The task's tokens are the legacy reader's to count, once. Its `/resume-claude`
and `/resume-codex` copy a Claude Code or Codex session's conversation without usage either.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.sources.claude_code import ClaudeCode
from dx_lsp_telemetry.sources.cline import KiloCode, RooCode
from dx_lsp_telemetry.sources.codex import Codex
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor
from dx_lsp_telemetry.sources.opencode import KiloDb
from tests import source_logs
from tests.harness import all_files_text, cli_json, date_ago, run_cli
from tests.opencode_logs import SECRET, OpenCodeDb, imported_id, step_tokens
from tests.real.captured import copy_files
from tests.real.test_captured_logs import bucket_totals
from tests.source_logs import ledger_tallies
from tests.test_source_cline import compact, roo_request, text, usage

DAY = "2026-03-01"
TASK = "1772359200000"  # the legacy extension names a task by its creation time (ms)


def at(day: str, hour: int = 10) -> datetime:
    y, m, d = (int(p) for p in day.split("-"))
    return datetime(y, m, d, hour, tzinfo=timezone.utc)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def write_task(storage: Path, task: str, day: str, counts: list[dict[str, int]]) -> None:
    """A legacy Kilo Code (or Roo Code) task's `ui_messages.json`, one request per counts."""
    start = ms(at(day))
    messages = [text(start - 1000)]
    messages += [roo_request(start + 60_000 * i, **c) for i, c in enumerate(counts)]
    path = storage / "tasks" / task / "ui_messages.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(compact(messages), encoding="utf-8")


def ingestor(data: DataPaths, homes: list[Path], source: KiloCode | RooCode) -> Ingestor:
    return Ingestor(data, source, homes, IngestOptions(source.label, estimate=False))


def test_an_imported_task_counts_once_and_what_follows_the_import_counts(tmp_path: Path) -> None:
    storage = tmp_path / "globalStorage" / "kilocode.kilo-code"
    write_task(storage, TASK, DAY, [usage(1000, 100, 0, 5000), usage(200, 20)])
    kilo = OpenCodeDb(tmp_path / "share" / "kilo" / "kilo.db")
    sid = kilo.imported_task(TASK, at(DAY), turns=2)
    assert sid == imported_id("ses", TASK)
    # the developer goes on in the imported session, in the new extension
    kilo.user(sid, at(DAY, 12))
    kilo.assistant(sid, at(DAY, 12), [step_tokens(30, 3), step_tokens(40, 4)], costs=[0.01, 0.02])
    data = DataPaths(tmp_path / "data")
    run = ingestor(data, [storage, kilo.path.parent], KiloCode())
    stats = run.scan()
    assert stats.files == 2 and stats.records == 4 and stats.problems == []
    assert ledger_tallies(data) == {(DAY, "kilo-code"): (4, 1270, 127, 0, 5000, 3.0)}
    assert run.scan().records == 0
    assert ingestor(data, [storage, kilo.path.parent], KiloCode()).scan().records == 0


def test_usage_copied_by_an_import_would_not_count_twice(tmp_path: Path) -> None:
    storage = tmp_path / "globalStorage" / "kilocode.kilo-code"
    write_task(storage, TASK, DAY, [usage(1000, 100)])
    kilo = OpenCodeDb(tmp_path / "kilo" / "kilo.db")
    sid = kilo.imported_task(TASK, at(DAY), turns=1)
    # an importer that also copied the request's usage, under the imported message
    kilo.part(
        sid,
        imported_id("msg", f"{TASK}:1"),
        at(DAY),
        {"type": "step-finish", "reason": "stop", "cost": 0, "tokens": step_tokens(1000, 100)},
    )
    data = DataPaths(tmp_path / "data")
    assert ingestor(data, [storage, kilo.path.parent], KiloCode()).scan().records == 1
    assert ledger_tallies(data) == {(DAY, "kilo-code"): (1, 1000, 100, 0, 0, 0.0)}


def test_roo_tasks_imported_into_kilo_are_roo_codes(tmp_path: Path) -> None:
    config = tmp_path / "config" / "Code" / "User" / "globalStorage"
    roo_storage = config / "rooveterinaryinc.roo-cline"
    write_task(roo_storage, TASK, DAY, [usage(500, 50, 0, 2000)])
    kilo = OpenCodeDb(tmp_path / "kilo" / "kilo.db")
    assert kilo.imported_task(TASK, at(DAY), turns=1, roo=True) == imported_id("ses", f"roo:{TASK}")
    data = DataPaths(tmp_path / "data")
    assert ingestor(data, [kilo.path.parent], KiloCode()).scan().records == 0
    assert ingestor(data, [roo_storage], RooCode()).scan().records == 1
    assert ledger_tallies(data) == {(DAY, "roo-code"): (1, 500, 50, 0, 2000, 0.0)}


def test_kilo_db_homes_and_files(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    assert KiloDb().homes("", {"HOME": str(home)}) == [home / ".local" / "share" / "kilo"]
    assert KiloDb().homes("", {"HOME": str(home), "XDG_DATA_HOME": str(xdg)}) == [xdg / "kilo"]
    custom = tmp_path / "elsewhere" / "my-kilo.db"
    assert KiloDb().homes("", {"HOME": str(home), "KILO_DB": str(custom)}) == [custom]
    mac = home / "Library" / "Application Support" / "kilo"
    mac.mkdir(parents=True)
    assert KiloDb("darwin").homes("", {"HOME": str(home)}) == [mac]
    for name in ("kilo.db", "kilo.db-wal", "kilo-beta.db", "opencode.db"):
        (mac / name).write_bytes(b"")
    assert list(KiloDb().files([mac])) == [mac / "kilo-beta.db", mac / "kilo.db"]
    source = KiloCode()
    assert source.wants(mac / "kilo.db") and not source.wants(mac / "opencode.db")
    assert source.wants(tmp_path / "tasks" / TASK / "ui_messages.json")


def test_nothing_private_reaches_the_data_folder(tmp_path: Path) -> None:
    kilo = OpenCodeDb(tmp_path / "kilo" / "kilo.db")
    sid = kilo.imported_task(TASK, at(DAY), turns=1)
    kilo.user(sid, at(DAY, 12))
    kilo.assistant(sid, at(DAY, 12), [step_tokens(30, 3)])
    data = DataPaths(tmp_path / "data")
    assert ingestor(data, [kilo.path.parent], KiloCode()).scan().records == 1
    stored = all_files_text(data.home)
    for secret in (SECRET, "secret-project", TASK, sid, "legacy"):
        assert secret not in stored, secret


def test_cli_scan_reads_both_stores(home: Path, tmp_path: Path) -> None:
    storage = tmp_path / "kilo-home"  # --path: the folder holding tasks/ and kilo.db
    d2 = date_ago(2)
    write_task(storage, TASK, d2, [usage(1000, 100, 0, 5000, 0.02)])
    kilo = OpenCodeDb(storage / "kilo.db")
    sid = kilo.imported_task(TASK, at(d2), turns=1)
    kilo.assistant(sid, at(d2, 14), [step_tokens(10, 1)], costs=[0.01])
    kilo.close()
    for spelling in ("kiloCode", "kilo-code"):
        done = run_cli(
            home, "scan", "--source", spelling, "--path", str(storage), HOME=str(tmp_path)
        )
        assert done.returncode == 0, done.stderr
        records = 2 if spelling == "kiloCode" else 0
        assert f"kilo-code: 2 files, {records} records" in done.stdout
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert days[(d2, "kilo-code")] == {
        "events": 2,
        "input_tokens": 1010,
        "output_tokens": 101,
        "cache_write_tokens": 0,
        "cache_read_tokens": 5000,
        "spend_cents": 3.0,
    }
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources["kilo-code"]["records"] == 2


def test_a_configured_path_replaces_the_defaults_of_the_store_found_there(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    default_db = tmp_path / "home" / ".local" / "share" / "kilo"
    default_tasks = tmp_path / "config" / "Code" / "User" / "globalStorage" / "kilocode.kilo-code"
    legacy = tmp_path / "legacy-storage"
    (legacy / "tasks").mkdir(parents=True)
    assert KiloCode().homes(str(legacy), env) == [legacy, default_db]
    db_folder = tmp_path / "kilo-data"
    OpenCodeDb(db_folder / "kilo.db").close()
    if sys.platform.startswith("linux"):
        assert KiloCode().homes(str(db_folder), env) == [default_tasks, db_folder]
        assert KiloCode().homes(str(db_folder / "kilo.db"), env) == [
            default_tasks,
            db_folder / "kilo.db",
        ]
    (db_folder / "tasks").mkdir()
    assert KiloCode().homes(str(db_folder), env) == [db_folder]  # both there
    nothing = tmp_path / "not-yet"
    assert KiloCode().homes(str(nothing), env) == [nothing]


def test_sessions_resumed_from_claude_code_and_codex_count_once_from_their_own_logs(
    tmp_path: Path,
) -> None:
    """Kilo's `/resume-claude` and `/resume-codex` copy a real Claude Code or Codex session's
    conversation into kilo.db without its usage (zero tokens, no step-finish part): the real
    captures' requests count once, from the claudeCode and codex sources; only the turn the
    developer then takes in Kilo counts for Kilo Code."""
    claude = copy_files("claude-code", "home/.claude", tmp_path / "claude")
    codex = copy_files("codex", "home/.codex", tmp_path / "codex")
    kilo = OpenCodeDb(tmp_path / "kilo" / "kilo.db")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    resumed = kilo.resumed_session(now, "anthropic", "claude-opus-5-5", turns=2)
    kilo.resumed_session(now, "fake", "gpt-fake", turns=2)
    kilo.user(resumed, now)
    kilo.assistant(resumed, now, [step_tokens(1500, 30, cr=2000)], costs=[0.01])
    data = DataPaths(tmp_path / "data")
    keep = {"retentionDays": 3650}  # the captures keep their dates
    source_logs.ingestor(data.home, ClaudeCode(), claude, settings=keep).scan()
    source_logs.ingestor(data.home, Codex(), codex, settings=keep).scan()
    assert ingestor(data, [kilo.path.parent], KiloCode()).scan().records == 1
    for tool in ("claude-code", "codex"):
        day = source_logs.ledger_total(data.home, tool)
        assert (day.events, day.tokens) == (2, bucket_totals(tool)), tool
    kilo_day = source_logs.ledger_total(data.home, "kilo-code")
    assert (kilo_day.events, kilo_day.tokens) == (1, (1500, 30, 0, 2000))
