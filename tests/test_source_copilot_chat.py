"""Copilot Chat source: VS Code's `chatSessions` patch logs and `.json` snapshots, counted once.

Fixtures are written as VS Code writes them (see `tests/copilot_chat_logs.py`); each test drives
the real `Ingestor` on a temporary data folder and reads the ledger back.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import dx_lsp_telemetry.sources.chat_session_doc as sdoc
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources.copilot_chat import CopilotChat, user_data_dirs
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats
from tests.copilot_chat_logs import (
    ANSWER,
    PROMPT,
    answer_parts,
    delete,
    dumps,
    initial,
    push,
    request,
    result,
    session,
    set_,
    turn,
    write,
)
from tests.harness import cli_json, date_ago, run_cli
from tests.ledger_oracle import winners
from tests.source_logs import Tally, all_file_bytes, ledger_tallies

DAY1, DAY2 = "2026-11-20", "2026-11-21"
TOOL = "copilot-chat"
SID = "2f6c1a52-7f1e-4a43-9b8e-0a1b2c3d4e5f"


def ms(day: str, hour: int = 10, minute: int = 0) -> int:
    y, m, d = (int(p) for p in day.split("-"))
    return int(datetime(y, m, d, hour, minute, tzinfo=timezone.utc).timestamp() * 1000)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.user = tmp_path / "Code" / "User"
        self.data = DataPaths(tmp_path / "data")
        self.data.ensure()
        self.ingestor = self.new_ingestor()

    def new_ingestor(self) -> Ingestor:
        return Ingestor(self.data, CopilotChat(), [self.user], IngestOptions(TOOL, estimate=False))

    def log(self, workspace: str = "a1b2c3", session_id: str = SID, suffix: str = ".jsonl") -> Path:
        return self.user / "workspaceStorage" / workspace / "chatSessions" / f"{session_id}{suffix}"

    def scan(self) -> ScanStats:
        return self.ingestor.scan()

    @property
    def checkpoint(self) -> Path:
        return self.data.home / "sources" / f"{TOOL}.json"

    def totals(self) -> dict[tuple[str, str], Tally]:
        return ledger_tallies(self.data)


@pytest.fixture
def chat(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def two_day_log(chat: Setup) -> Path:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1, 8))))
    write(path, turn(0, request("request_1", ms(DAY1, 9)), result(1200, 80), ms(DAY1, 9, 1)))
    write(
        path,
        turn(
            1,
            request("request_2", ms(DAY1, 23, 59), model_id="copilot/gpt-5"),
            result(3000, 150, resolved=None),
            ms(DAY2, 0, 1),
        ),
    )
    write(path, turn(2, request("request_3", ms(DAY2, 11)), result(500, 20), ms(DAY2, 11, 1)))
    return path


def test_exact_per_day_totals_from_a_patch_log(chat: Setup) -> None:
    two_day_log(chat)
    stats = chat.scan()
    assert (stats.files, stats.records, stats.problems) == (1, 3, [])
    assert chat.totals() == {
        (DAY1, TOOL): (2, 4200, 230, 0, 0, 0.0),
        (DAY2, TOOL): (1, 500, 20, 0, 0, 0.0),
    }
    models = [e.model for e in sorted(winners(chat.data.ledger_dir), key=lambda e: e.timestamp)]
    assert models == ["claude-sonnet-4.5", "gpt-5", "claude-sonnet-4.5"]  # `copilot/` dropped


def test_a_re_read_adds_nothing_and_appended_patches_count(chat: Setup) -> None:
    path = two_day_log(chat)
    assert chat.scan().records == 3
    assert chat.scan().records == 0
    assert chat.new_ingestor().scan().records == 0
    # a fourth prompt: pushed first (no counts yet), its result later
    write(path, push(["requests"], [request("request_4", ms(DAY2, 12))]))
    write(path, push(["requests", 3, "response"], answer_parts()))
    assert chat.scan().records == 0
    write(path, set_(["requests", 3, "result"], result(10, 1)))
    assert chat.scan().records == 1
    assert chat.scan().records == 0
    assert chat.totals()[(DAY2, TOOL)] == (2, 510, 21, 0, 0, 0.0)


def test_the_request_s_own_completion_count_wins_over_the_last_round_s(chat: Setup) -> None:
    path = chat.log()
    req = request("request_1", ms(DAY1), completionTokens=900)  # all rounds' output
    write(path, initial(session(SID, ms(DAY1), [req])))
    write(path, set_(["requests", 0, "result"], result(1000, 300)))
    assert chat.scan().records == 1
    assert chat.totals() == {(DAY1, TOOL): (1, 1000, 900, 0, 0, 0.0)}


def test_a_partial_last_line_waits_for_its_end(chat: Setup) -> None:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1))))
    write(path, turn(0, request("request_1", ms(DAY1)), result(100, 10), ms(DAY1)))
    last = set_(["requests", 0, "result"], result(150, 12))
    write(path, last[:40])
    stats = chat.scan()
    assert (stats.records, stats.problems) == (1, [])
    assert chat.totals() == {(DAY1, TOOL): (1, 100, 10, 0, 0, 0.0)}
    write(path, last[40:])
    assert chat.scan().records == 1  # the same request, grown: the ledger keeps the larger
    assert chat.scan().records == 0
    assert chat.totals() == {(DAY1, TOOL): (1, 150, 12, 0, 0, 0.0)}


def test_a_compacted_log_is_replayed_and_counts_nothing_twice(chat: Setup) -> None:
    path = two_day_log(chat)
    assert chat.scan().records == 3
    inode = os.stat(path).st_ino
    # VS Code compacts a long log into one kind-0 line, writing the file over in place; the
    # same first bytes, and (with a long new request) longer than what was read
    doc = session(SID, ms(DAY1, 8))
    doc["requests"] = [
        request("request_1", ms(DAY1, 9), result=result(1200, 80)),
        request(
            "request_2",
            ms(DAY1, 23, 59),
            model_id="copilot/gpt-5",
            result=result(3000, 150, resolved=None),
        ),
        request("request_3", ms(DAY2, 11), result=result(500, 20)),
        request("request_5", ms(DAY2, 13), prompt="x" * 20_000, result=result(7, 7)),
    ]
    size = path.stat().st_size
    with open(path, "r+", encoding="utf-8") as f:
        f.write(initial(doc))
        f.truncate()
    assert os.stat(path).st_ino == inode and path.stat().st_size > size
    stats = chat.scan()
    assert (stats.records, stats.problems) == (1, [])  # only the new request
    assert chat.totals()[(DAY2, TOOL)] == (2, 507, 27, 0, 0, 0.0)
    write(path, set_(["requests", 3, "result"], result(9, 9)))
    assert chat.scan().records == 1
    assert chat.totals()[(DAY2, TOOL)] == (2, 509, 29, 0, 0, 0.0)


def test_a_cut_and_push_replaces_the_later_requests(chat: Setup) -> None:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1))))
    write(path, turn(0, request("request_1", ms(DAY1, 9)), result(100, 10), ms(DAY1, 9)))
    write(path, turn(1, request("request_2", ms(DAY1, 10)), result(200, 20), ms(DAY1, 10)))
    assert chat.scan().records == 2
    # the user edits the second prompt: VS Code cuts the array at 1 and pushes the new request
    write(path, push(["requests"], [request("request_9", ms(DAY1, 11))], cut=1))
    write(path, set_(["requests", 1, "result"], result(300, 30)))
    assert chat.scan().records == 1
    # the removed request's tokens were spent: it stays counted
    assert chat.totals() == {(DAY1, TOOL): (3, 600, 60, 0, 0, 0.0)}


def test_copies_of_a_session_count_once(chat: Setup) -> None:
    # a window moving to another workspace copies its sessions and keeps the originals; an old
    # `.json` snapshot can sit beside the `.jsonl`; an empty window's session has its own folder
    two_day_log(chat)
    text = chat.log().read_text(encoding="utf-8")
    write(chat.log(workspace="ffee99"), text)
    write(chat.user / "globalStorage" / "emptyWindowChatSessions" / f"{SID}.jsonl", text)
    snapshot = session(SID, ms(DAY1, 8))
    snapshot["requests"] = [request("request_1", ms(DAY1, 9), result=result(1200, 80))]
    write(chat.log(suffix=".json"), dumps(snapshot))
    stats = chat.scan()
    assert stats.files == 4
    assert chat.totals() == {
        (DAY1, TOOL): (2, 4200, 230, 0, 0, 0.0),
        (DAY2, TOOL): (1, 500, 20, 0, 0, 0.0),
    }


def test_the_same_request_id_in_another_session_is_another_request(chat: Setup) -> None:
    write(
        chat.log(), initial(session(SID, ms(DAY1), [request("r", ms(DAY1), result=result(5, 1))]))
    )
    other = "99999999-2222-4333-8444-555555555555"
    write(
        chat.log(session_id=other),
        initial(session(other, ms(DAY1), [request("r", ms(DAY1), result=result(5, 1))])),
    )
    assert chat.scan().records == 2
    assert chat.totals() == {(DAY1, TOOL): (2, 10, 2, 0, 0, 0.0)}


def test_a_json_snapshot_rewritten_counts_each_request_once(chat: Setup) -> None:
    path = chat.log(suffix=".json")
    doc = session(SID, ms(DAY1))
    doc["requests"] = [request("request_1", ms(DAY1, 9), result=result(100, 10))]
    write(path, dumps(doc), mode="w")
    assert chat.scan().records == 1
    for _ in range(3):  # rewritten whole on every change, nothing new
        write(path, dumps(doc) + " ", mode="w")
        assert chat.scan().records == 0
    doc["requests"].append(request("request_2", ms(DAY2, 9), result=result(40, 4)))
    write(path, dumps(doc), mode="w")
    assert chat.scan().records == 1
    write(path, dumps(doc)[:50], mode="w")  # caught half-written: read again later
    stats = chat.scan()
    assert (stats.records, stats.problems, stats.retry) == (0, [], [path])
    write(path, dumps(doc), mode="w")
    assert chat.scan().records == 0
    assert chat.totals() == {
        (DAY1, TOOL): (1, 100, 10, 0, 0, 0.0),
        (DAY2, TOOL): (1, 40, 4, 0, 0, 0.0),
    }


def test_torn_and_wrong_lines_are_named_and_the_rest_is_read(chat: Setup) -> None:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1))))
    write(path, turn(0, request("request_1", ms(DAY1, 9)), result(100, 10), ms(DAY1, 9)))
    torn = set_(["requests", 0, "modelState"], {"value": 0})[:25]  # a crash mid-write, then more
    write(path, torn + push(["requests"], [request("request_2", ms(DAY1, 10))]))
    write(path, set_(["requests", 1, "result"], result(200, 20)))
    write(path, "not json at all\n")
    write(path, set_(["requests", 7, "result"], result(1, 1)))  # no such request
    write(path, dumps({"kind": "set", "k": [], "v": 1}) + "\n")
    write(path, dumps({"kind": 1, "k": ["requests", -1], "v": 1}) + "\n")
    write(path, dumps([1, 2]) + "\n")
    write(path, turn(2, request("request_3", ms(DAY1, 11)), result("many", 5), ms(DAY1, 11)))
    write(path, turn(3, request("request_4", ms(DAY1, 12)), result(300, -3), ms(DAY1, 12)))
    write(path, turn(4, request("request_5", "yesterday"), result(5, 5), ms(DAY1, 13)))  # type: ignore[arg-type]
    write(path, turn(5, request("request_6", ms(DAY1, 14)), result(400, 40), ms(DAY1, 14)))
    stats = chat.scan()
    assert stats.records == 3
    assert chat.totals() == {(DAY1, TOOL): (3, 700, 70, 0, 0, 0.0)}
    assert len(stats.problems) == 1
    problem = stats.problems[0]
    assert problem.startswith(f"{SID}.jsonl: skipped 5 unreadable lines (line 9: not JSON; ")
    assert "line 10: no requests.7 in the session" in problem
    assert (
        "skipped 3 requests (request 3: result.metadata.promptTokens is not a token count"
        in problem
    )
    assert "(a string)" in problem and "(negative)" in problem and "no usable timestamp" in problem
    for secret in ("many", "yesterday", "not json"):
        assert secret not in problem
    write(path, set_(["requests", 5, "result"], result(401, 41)))
    stats = chat.scan()  # each problem is told once
    assert (stats.records, stats.problems) == (1, [])


def test_huge_lines_of_tool_output_are_not_decoded(
    chat: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1))))
    write(path, push(["requests"], [request("request_1", ms(DAY1))]))
    big = [{"kind": "toolInvocationSerialized", "output": "y" * (24 << 20)}]
    write(path, push(["requests", 0, "response"], big))
    write(path, set_(["inputState", "inputText"], "z" * (4 << 20)))
    write(path, set_(["requests", 0, "result"], result(100, 10)))
    decoded: list[int] = []
    real = sdoc.decode_line

    def counting(line: bytes) -> Any:
        decoded.append(len(line))
        return real(line)

    monkeypatch.setattr(sdoc, "decode_line", counting)
    assert chat.scan().records == 1
    assert max(decoded) < 1 << 20  # the 24 MB and 4 MB lines were skipped by their path
    assert len(decoded) == 3


def test_restart_and_crash_count_nothing_twice(chat: Setup) -> None:
    path = two_day_log(chat)
    assert chat.scan().records == 3
    saved = chat.checkpoint.read_bytes()
    write(path, turn(3, request("request_4", ms(DAY2, 15)), result(70, 7), ms(DAY2, 15)))
    assert chat.scan().records == 1
    expected = {
        (DAY1, TOOL): (2, 4200, 230, 0, 0, 0.0),
        (DAY2, TOOL): (2, 570, 27, 0, 0, 0.0),
    }
    assert chat.totals() == expected
    chat.checkpoint.write_bytes(saved)  # a crash after the ledger write, before the checkpoint
    assert chat.new_ingestor().scan().records == 1
    chat.checkpoint.unlink()
    assert chat.new_ingestor().scan().records == 4
    assert chat.totals() == expected


def test_nothing_private_reaches_the_data_folder(chat: Setup) -> None:
    path = two_day_log(chat)
    write(path, set_(["inputState", "inputText"], "draft: " + PROMPT))
    write(chat.log(suffix=".json"), dumps(session(SID, 0, [request("request_1", ms(DAY1))])))
    assert chat.scan().records == 3
    stored = all_file_bytes(chat.data.home)
    assert stored
    for name, content in stored.items():
        for secret in (PROMPT, ANSWER, "secret-payroll", SID, "request_1", "a1b2c3", "editsAgent"):
            assert secret.encode() not in content, (name, secret)
            assert secret not in name


def test_homes_per_os_and_the_path_setting(tmp_path: Path) -> None:
    source = CopilotChat()
    home = tmp_path / "home"
    linux = user_data_dirs({"HOME": str(home)}, "linux")
    assert linux[:2] == [home / ".config" / "Code", home / ".config" / "Code - Insiders"]
    assert home / ".config" / "VSCodium" in linux and home / ".vscode-server" / "data" in linux
    assert user_data_dirs({"HOME": str(home)}, "darwin")[0] == (
        home / "Library" / "Application Support" / "Code"
    )
    appdata = tmp_path / "Roaming"
    assert user_data_dirs({"HOME": str(home), "APPDATA": str(appdata)}, "win32")[0] == (
        appdata / "Code"
    )
    portable = user_data_dirs({"HOME": str(home), "VSCODE_PORTABLE": str(tmp_path / "p")}, "linux")
    assert portable[0] == tmp_path / "p" / "user-data"
    assert not any("Cursor" in str(d) or "Windsurf" in str(d) for d in linux)
    # nothing installed: the first default, so `sources` can say where it looks
    assert source.homes("", {"HOME": str(home)}) == [linux[0] / "User"]
    (home / ".config" / "Code - Insiders" / "User").mkdir(parents=True)
    (home / ".config" / "VSCodium" / "User").mkdir(parents=True)
    assert source.homes("", {"HOME": str(home)}) == [
        home / ".config" / "Code - Insiders" / "User",
        home / ".config" / "VSCodium" / "User",
    ]
    data = tmp_path / "custom"
    for configured in (data, data / "User", data / "User" / "workspaceStorage"):
        assert source.homes(str(configured), {"HOME": str(home)}) == [data / "User"]


def test_files_watch_dirs_and_wants(chat: Setup) -> None:
    source = CopilotChat()
    one = write(chat.log(), initial(session(SID, 0)))
    two = write(chat.log(workspace="b2", suffix=".json"), "{}")
    empty = write(chat.user / "globalStorage" / "emptyWindowChatSessions" / "e.jsonl", "")
    other = write(chat.user / "workspaceStorage" / "a1b2c3" / "state.vscdb", "x")
    write(
        chat.user / "workspaceStorage" / "a1b2c3" / "chatEditingSessions" / "s" / "state.json", "{}"
    )
    assert list(source.files([chat.user])) == [one, two, empty]
    assert source.watch_dirs([chat.user]) == [one.parent, two.parent, empty.parent]
    assert source.wants(one) and source.wants(two) and source.wants(empty)
    assert not source.wants(other)
    assert not source.wants(chat.user / "globalStorage" / "x" / "tasks" / "ui_messages.json")


def test_cli_scan_by_label_or_settings_key_then_report(home: Path, tmp_path: Path) -> None:
    user = tmp_path / "vscode-data" / "User"
    d2, d3 = date_ago(2), date_ago(3)
    log = user / "workspaceStorage" / "w1" / "chatSessions" / f"{SID}.jsonl"
    write(log, initial(session(SID, ms(d3, 7))))
    write(log, turn(0, request("request_1", ms(d3, 8)), result(1200, 30), ms(d3, 8)))
    write(log, turn(1, request("request_2", ms(d2, 9)), result(800, 20), ms(d2, 9)))
    done = run_cli(home, "scan", "--source", "copilot-chat", "--path", str(user.parent))
    assert done.returncode == 0, done.stderr
    assert "copilot-chat: 1 file, 2 records" in done.stdout
    again = run_cli(home, "scan", "--source", "copilotChat", "--path", str(user))
    assert again.returncode == 0, again.stderr
    assert "copilot-chat: 1 file, 0 records" in again.stdout
    report = cli_json(home, "report", "--json", "--days", "5")
    days = {(d["date"], d["tool"]): d["totals"] for d in report["days"]}
    assert (days[(d3, TOOL)]["input_tokens"], days[(d3, TOOL)]["output_tokens"]) == (1200, 30)
    assert (days[(d2, TOOL)]["input_tokens"], days[(d2, TOOL)]["events"]) == (800, 1)
    sources = {s["label"]: s for s in cli_json(home, "sources", "--json")["sources"]}
    assert sources[TOOL]["name"] == "copilotChat" and sources[TOOL]["records"] == 2


def test_a_deleted_result_keeps_what_was_counted(chat: Setup) -> None:
    path = chat.log()
    write(path, initial(session(SID, ms(DAY1))))
    write(path, turn(0, request("request_1", ms(DAY1)), result(100, 10), ms(DAY1)))
    assert chat.scan().records == 1
    write(path, delete(["requests", 0, "result"]))
    assert chat.scan().records == 0
    write(path, set_(["requests", 0, "result"], result(100, 10)))
    assert chat.scan().records == 1  # forgotten while its result was gone: the same event again
    assert chat.totals() == {(DAY1, TOOL): (1, 100, 10, 0, 0, 0.0)}
