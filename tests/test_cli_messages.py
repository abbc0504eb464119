"""The CLI's words and exit codes, as a table: each row runs `python -m dx_lsp_telemetry ARGV`
as a real subprocess, with its environment, on a fresh data folder (prepared by the row's
`setup` through the CLI itself) and, for `flush`, a real HTTP server on 127.0.0.1 playing DX;
then checks the exit code and what stdout and stderr hold, and what neither may hold.

Also: one problem in the editor's words and the CLI's (the one mechanism behind both), every
verb's and option's help, and the README's table of exit codes against `cli_args.EXITS`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dx_lsp_telemetry.cli.args import EXITS, Grammar
from dx_lsp_telemetry.cli.common import CliNamer
from dx_lsp_telemetry.push.config import blocking_problems
from dx_lsp_telemetry.settings.settings import Settings
from tests.fake_dx import FakeDx, Script
from tests.harness import TEST_TOKEN, date_ago, days_ago, run_cli, sidecar_env
from tests.source_logs import claude_assistant, claude_usage, day_start, write_lines

TOOL = "acme-ai"
EMAIL = "dev@example.com"
OK, FAILED, USAGE = 0, 1, 2
README = Path(__file__).resolve().parent.parent / "README.md"
#: the env of a user with no editor settings who set what a push needs
PUSHABLE = {"DX_TELEMETRY_EMAIL": EMAIL, "DX_TELEMETRY_TOOL": TOOL}
#: what the CLI's messages never say: the editor's names where the CLI has its own, LSP words
EDITOR_WORDS = ("dxTelemetry.email", "dxTelemetry.tool", "params", "Set API Token")
#: a log line as the sidecar's log writes it (time, level, logger)
LOG_PREFIX = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |INFO |WARNING |dx_lsp_telemetry\.")


@dataclass
class World:
    """What a row's placeholders stand for: `<home>`, `<dx>`, `<d2>`, `<logs>`."""

    home: Path
    logs: Path
    dx: FakeDx | None = None

    def fill(self, text: str) -> str:
        for name, value in (
            ("<home>", str(self.home)),
            ("<logs>", str(self.logs)),
            ("<d2>", date_ago(2)),
            ("<dx>", self.dx.url if self.dx else "<no dx>"),
        ):
            text = text.replace(name, value)
        return text


Setup = Callable[[World], None]


@dataclass(frozen=True)
class Row:
    argv: tuple[str, ...]
    code: int
    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    #: in neither stream
    absent: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    token: str | None = TEST_TOKEN
    setup: tuple[Setup, ...] = ()
    #: DX's answers, in order (a row with any DX gets a loopback fake)
    dx: tuple[Script, ...] | None = None
    stderr_empty: bool = False


def row(argv: str, code: int, *, id: str, **kw: Any) -> Any:
    return pytest.param(Row(tuple(argv.split()), code, **kw), id=id)


# -- setups: the data folder and logs a row starts from -------------------------------------


def recorded_2_days_ago(world: World) -> None:
    done = run_cli(
        world.home, "record", "--tool", TOOL, "--timestamp", days_ago(2), "--input-tokens", "7"
    )
    assert done.returncode == OK, done.stderr


def unconfirmed_2_days_ago(world: World) -> None:
    """A day whose push DX answered 500 (the row's first script): DX may have stored it."""
    recorded_2_days_ago(world)
    assert world.dx is not None
    done = run_cli(world.home, "flush", **PUSHABLE, DX_TELEMETRY_INSTANCE_URL=world.dx.url)
    assert done.returncode == FAILED and "unconfirmed" in done.stdout, done.stdout + done.stderr


def recorded_today(world: World) -> None:
    done = run_cli(world.home, "record", "--tool", TOOL, "--input-tokens", "3")
    assert done.returncode == OK, done.stderr


def editor_saved_plain_http(world: World) -> None:
    """As a sidecar saves the editor's settings: an instance URL the token must not go to."""
    world.home.mkdir(parents=True, exist_ok=True)
    settings = {"email": EMAIL, "tool": TOOL, "instanceUrl": "http://example.com"}
    (world.home / "settings.json").write_text(json.dumps(settings))


def a_transcript(world: World) -> None:
    t0 = day_start(2) + timedelta(hours=10)
    line = claude_assistant(t0, "s1", "msg_1", "req_1", claude_usage(10, 5, 2, 3))
    write_lines(world.logs / "projects" / "-home-dev-p" / "s1.jsonl", [line])


def a_torn_line(world: World) -> None:
    """A line a source cannot use, in a file it can read: the tool was writing it."""
    with (world.logs / "projects" / "-home-dev-p" / "s1.jsonl").open("a") as f:
        f.write('{"type": "assistant", "message": {"usage": \n')


ROWS = [
    # -- messages name the CLI's own variables, never the editor's settings or LSP words ---
    row(
        "status",
        OK,
        id="status-no-email-no-tool",
        stdout=(
            "DX_TELEMETRY_EMAIL is not set: days cannot be pushed",
            "DX_TELEMETRY_TOOL is not set: days cannot be pushed",
        ),
        absent=EDITOR_WORDS,
    ),
    row(
        "status",
        OK,
        id="status-no-token",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "https://acme.getdx.net"},
        token=None,
        stdout=("DX_DATA_CLOUD_TOKEN is not set: export it in this shell",),
        absent=EDITOR_WORDS,
    ),
    row(
        "status",
        OK,
        id="status-http-from-env-names-the-variable",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "http://example.com"},
        stdout=("DX_TELEMETRY_INSTANCE_URL: plain http:// is refused",),
    ),
    row(
        "status",
        OK,
        id="status-http-from-the-editor-names-its-setting",
        setup=(editor_saved_plain_http,),
        stdout=("dxTelemetry.instanceUrl (from the editor's settings): plain http://",),
        absent=("DX_TELEMETRY_INSTANCE_URL",),
    ),
    row(
        "record --input-tokens 1",
        USAGE,
        id="record-no-tool",
        stderr=("record: --tool: not given, and DX_TELEMETRY_TOOL is not set",),
        absent=(*EDITOR_WORDS, "got null"),
    ),
    row(
        "record --json [1]",
        USAGE,
        id="record-json-not-an-object",
        stderr=("record: --json: expected one usage event object, got [1]",),
        absent=EDITOR_WORDS,
    ),
    row(
        'record --json {"tool":"t","spend_cents":1,"cost_usd":0.01}',
        USAGE,
        id="record-json-spend-and-cost",
        stderr=("record: cost_usd: give spend_cents or cost_usd, not both\n",),
        absent=("got",),
    ),
    row(
        "record --tool t --spend-cents 1 --cost-usd 0.01",
        USAGE,
        id="record-spend-and-cost-options",
        stderr=("argument --cost-usd: not allowed with argument --spend-cents",),
    ),
    row(
        "record --tool t --input-tokens -5",
        USAGE,
        id="record-names-the-option",
        stderr=("record: --input-tokens: expected an integer from 0 to 10^12, got -5",),
    ),
    row(
        "record --tool t --metric events=3",
        USAGE,
        id="record-names-the-metric-option",
        stderr=('record: --metric events: "events" is reserved',),
    ),
    row(
        "record --bogus 3",
        USAGE,
        id="record-unknown-option-shows-records-usage",
        stderr=("usage: dx-lsp-telemetry record [-h]", "unrecognized arguments: --bogus 3"),
        absent=("usage: dx-lsp-telemetry [-h]",),
    ),
    row(
        "scan --since yesterday",
        USAGE,
        id="scan-since-names-since",
        stderr=("usage: dx-lsp-telemetry scan", "argument --since: expected a date as YYYY-MM-DD"),
    ),
    row(
        "report --days 0",
        USAGE,
        id="report-days-out-of-range",
        stderr=("report: --days: expected 1 to 3650, got 0",),
    ),
    # -- human output by default, JSON with --json ------------------------------------------
    row(
        "record --tool t --input-tokens 5",
        OK,
        id="record-says-a-sentence",
        stdout=("recorded event ", " of t on "),
        absent=("{",),
    ),
    row(
        "record --tool t --input-tokens 5 --json",
        OK,
        id="record-json-answer",
        stdout=('"recorded": true', '"duplicate": false'),
    ),
    row(
        "status",
        OK,
        id="status-1-event-singular",
        setup=(recorded_today,),
        stdout=(" 1 event ", "3 tokens"),
        absent=("1 events",),
    ),
    row(
        "status",
        OK,
        id="status-shows-the-outbox-folder",
        env=PUSHABLE,
        stdout=("destination: outbox (<home>/outbox)",),
    ),
    row(
        "status",
        OK,
        id="status-shows-the-instance-url",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "https://acme.getdx.net"},
        stdout=("destination: dx (https://acme.getdx.net)",),
    ),
    row("sources --json", OK, id="sources-json", stdout=('"sources": [',)),
    # -- scan: both spellings, a missing --path, unreadable lines ------------------------
    row(
        "scan --source claudeCode --path <logs>",
        OK,
        id="scan-settings-name",
        setup=(a_transcript,),
        stdout=("claude-code: 1 file, 1 record read",),
    ),
    row(
        "scan --source claude-code --path <logs>",
        OK,
        id="scan-label",
        setup=(a_transcript,),
        stdout=("claude-code: 1 file, 1 record read",),
    ),
    row(
        "scan --source claude-code --path <logs> --json",
        OK,
        id="scan-json",
        setup=(a_transcript,),
        stdout=('"claude-code": {', '"records": 1', '"unreadFiles": 0'),
    ),
    row(
        "scan --source claude-code --path /no/such/dir",
        USAGE,
        id="scan-missing-path",
        stderr=("scan: --path /no/such/dir: no such file or folder",),
    ),
    row(
        "scan --source gemini",
        USAGE,
        id="scan-unknown-source-lists-both-names",
        stderr=("unknown source 'gemini'", "claude-code (claudeCode)", "gemini-cli (geminiCli)"),
    ),
    row(
        "scan --source claude-code --path <logs>",
        OK,
        id="scan-unreadable-line-is-a-warning",
        setup=(a_transcript, a_torn_line),
        stdout=("claude-code: 1 file, 1 record read",),
        stderr=("warning: claude-code: s1.jsonl: skipped 1 unreadable",),
    ),
    # -- flush: human by default, --json, warnings, usage, exit codes ----------------------
    row(
        "flush --dry-run",
        OK,
        id="dry-run-without-email-warns",
        env={"DX_TELEMETRY_TOOL": TOOL},
        setup=(recorded_2_days_ago,),
        stdout=("a push now would send 1 record to the outbox (<home>/outbox)", "<d2>  acme-ai"),
        stderr=("warning: DX_TELEMETRY_EMAIL is not set: days cannot be pushed",),
        absent=("dxTelemetry.email",),
    ),
    row(
        "flush --dry-run --json",
        OK,
        id="dry-run-json-without-email-warns",
        env={"DX_TELEMETRY_TOOL": TOOL},
        setup=(recorded_2_days_ago,),
        stdout=('"email": ""', '"input_tokens": 7'),
        stderr=("warning: DX_TELEMETRY_EMAIL is not set",),
    ),
    row(
        "flush --tool X",
        USAGE,
        id="flush-tool-needs-resend",
        stderr=("flush: --tool names the day's tool for --resend or --mark-pushed",),
    ),
    row(
        "flush --resend <d2>",
        USAGE,
        id="flush-resend-needs-tool",
        stderr=("flush: --resend needs --tool",),
    ),
    row(
        "flush --resend someday --tool t",
        USAGE,
        id="flush-resend-names-the-option",
        stderr=("argument --resend: expected a date as YYYY-MM-DD, got 'someday'",),
    ),
    row(
        "flush --dry-run --resend <d2> --tool t",
        USAGE,
        id="flush-dry-run-is-not-for-one-day",
        stderr=("--dry-run shows what a push cycle would send",),
    ),
    row(
        "flush",
        USAGE,
        id="flush-without-email",
        env={"DX_TELEMETRY_TOOL": TOOL},
        setup=(recorded_2_days_ago,),
        stderr=("flush: DX_TELEMETRY_EMAIL is not set: days cannot be pushed",),
        absent=EDITOR_WORDS,
    ),
    row(
        "flush",
        USAGE,
        id="flush-plain-http",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "http://example.com"},
        stderr=("flush: DX_TELEMETRY_INSTANCE_URL: plain http:// is refused",),
    ),
    row(
        "flush",
        OK,
        id="flush-to-the-outbox-says-so-and-logs-nothing",
        env=PUSHABLE,
        setup=(recorded_2_days_ago,),
        stdout=("wrote <d2> acme-ai to the outbox (<home>/outbox)",),
        stderr_empty=True,
    ),
    row(
        "flush --verbose",
        OK,
        id="flush-verbose-logs-plain-sentences",
        env=PUSHABLE,
        setup=(recorded_2_days_ago,),
        stdout=("wrote <d2> acme-ai to the outbox",),
        stderr=("<d2> acme-ai written to the outbox: <home>/outbox/<d2>__acme-ai.json",),
    ),
    row(
        "flush",
        OK,
        id="flush-nothing-due",
        env=PUSHABLE,
        stdout=("nothing to push: every complete day in the window is already done",),
    ),
    row(
        "flush",
        OK,
        id="flush-to-dx",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(recorded_2_days_ago,),
        dx=(),
        stdout=("pushed <d2> acme-ai to <dx>",),
        stderr_empty=True,
    ),
    row(
        "flush --json",
        OK,
        id="flush-to-dx-json",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(recorded_2_days_ago,),
        dx=(),
        stdout=('"pushed": [', '"destination": "dx"'),
    ),
    row(
        "flush",
        FAILED,
        id="flush-refused-exits-1",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        token="not-the-token",
        setup=(recorded_2_days_ago,),
        dx=(),
        stdout=("failed <d2> acme-ai: ",),
        absent=("not-the-token",),
    ),
    row(
        "flush",
        FAILED,
        id="flush-unconfirmed-exits-1-and-says-what-to-do",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(recorded_2_days_ago,),
        dx=(Script(kind="status", status=500),),
        stdout=(
            "unconfirmed <d2> acme-ai: DX's answer was lost",
            "flush --resend <d2> --tool acme-ai",
        ),
    ),
    row(
        "flush --resend <d2> --tool acme-ai",
        OK,
        id="flush-resend-says-a-sentence",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(unconfirmed_2_days_ago,),
        dx=(Script(kind="status", status=500),),
        stdout=("pushed <d2> acme-ai to <dx>",),
    ),
    row(
        "flush --mark-pushed <d2> --tool acme-ai",
        OK,
        id="flush-mark-pushed-says-a-sentence",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(unconfirmed_2_days_ago,),
        dx=(Script(kind="status", status=500),),
        stdout=("<d2> acme-ai is marked pushed",),
    ),
    row(
        "flush --json",
        FAILED,
        id="flush-unconfirmed-json-advice-on-stderr",
        env={**PUSHABLE, "DX_TELEMETRY_INSTANCE_URL": "<dx>"},
        setup=(recorded_2_days_ago,),
        dx=(Script(kind="status", status=500),),
        stdout=('"unconfirmed": [',),
        stderr=("flush --mark-pushed <d2> --tool acme-ai",),
    ),
]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "home", tmp_path / "claude")


def cli(
    world: World, argv: list[str], env: dict[str, str], token: str | None, wrapper: list[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "dx_lsp_telemetry", *argv],
        # HOME: no row reads the machine's own AI tool logs
        env=sidecar_env(world.home, token=token, HOME=str(world.logs.parent / "nohome"), **env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def check(done: subprocess.CompletedProcess[str], case: Row, world: World) -> None:
    said = f"exit {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    assert done.returncode == case.code, said
    for text in case.stdout:
        assert world.fill(text) in done.stdout, said
    for text in case.stderr:
        assert world.fill(text) in done.stderr, said
    for text in case.absent:
        assert world.fill(text) not in done.stdout + done.stderr, said
    assert "Traceback" not in done.stderr, said
    assert not LOG_PREFIX.search(done.stderr), said
    if case.stderr_empty:
        assert done.stderr == "", said


@pytest.mark.parametrize("case", ROWS)
def test_cli_table(case: Row, world: World, request: pytest.FixtureRequest) -> None:
    if case.dx is not None:
        world.dx = request.getfixturevalue("dx")
        world.dx.then(*case.dx)
    for step in case.setup:
        step(world)
    env = {k: world.fill(v) for k, v in case.env.items()}
    done = cli(world, [world.fill(a) for a in case.argv], env, case.token, [])
    check(done, case, world)


# -- a log file that cannot be read: exit 1 ---------------------------------------------------


@pytest.fixture
def shared_world() -> Iterator[World]:
    """A world under /tmp that another user may enter (pytest's tmp_path is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="dx-cli-"))
    try:
        base.chmod(0o777)
        yield World(base / "home", base / "claude")
    finally:
        shutil.rmtree(base)


def test_scan_with_a_log_it_may_not_read_exits_1(shared_world: World) -> None:
    """Permission bits do not stop root: then the scan runs as nobody (setpriv)."""
    wrapper: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root, and no setpriv to drop to another user")
        wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    world = shared_world
    a_transcript(world)
    secret = world.logs / "projects" / "-home-dev-p" / "s2.jsonl"
    secret.write_text("{}\n")
    secret.chmod(0)
    for folder in (world.logs, *world.logs.rglob("*")):
        if folder.is_dir():
            folder.chmod(0o755)
    (world.logs / "projects" / "-home-dev-p" / "s1.jsonl").chmod(0o644)
    case = Row(
        ("scan", "--source", "claude-code", "--path", str(world.logs)),
        FAILED,
        stdout=("claude-code: 2 files, 1 record read",),
        stderr=("warning: claude-code: s2.jsonl: Permission denied", "error: "),
    )
    check(cli(world, list(case.argv), {}, TEST_TOKEN, wrapper), case, world)


# -- one mechanism: a problem names a key, each front end says it its way --------------------


def test_one_problem_in_the_editors_words_and_the_clis() -> None:
    settings = Settings(instance_url="https://acme.getdx.net")
    assert blocking_problems(settings, None) == [
        "dxTelemetry.email is not set: days cannot be pushed",
        "dxTelemetry.tool is not set: days cannot be pushed",
        "DX_DATA_CLOUD_TOKEN is not set: run 'DX Telemetry: Set API Token' "
        "(or set it in the environment)",
    ]
    assert blocking_problems(settings, None, CliNamer()) == [
        "DX_TELEMETRY_EMAIL is not set: days cannot be pushed",
        "DX_TELEMETRY_TOOL is not set: days cannot be pushed",
        "DX_DATA_CLOUD_TOKEN is not set: export it in this shell "
        "(the editor keeps its token to itself)",
    ]
    saved = CliNamer(from_editor=frozenset({"email"}))
    wrong = Settings(email="nobody", tool=TOOL)
    assert blocking_problems(wrong, None, saved) == [
        'dxTelemetry.email (from the editor\'s settings) "nobody" does not look like an email '
        "address"
    ]


# -- help ------------------------------------------------------------------------------------


def test_every_verb_and_option_has_help() -> None:
    grammar = Grammar()
    assert grammar.parser.description
    for name, verb in grammar.verbs.items():
        assert verb.description, name
        for action in verb._actions:  # argparse lists a parser's options nowhere public
            assert action.help, (name, action.option_strings)
        if name in EXITS:
            assert verb.epilog and verb.epilog.startswith("exit codes: 0 "), name


@pytest.mark.parametrize("verb", sorted(EXITS))
def test_verb_help_names_its_exit_codes(verb: str, world: World) -> None:
    done = run_cli(world.home, verb, "--help")
    assert done.returncode == OK, done.stderr
    assert f"usage: dx-lsp-telemetry {verb}" in done.stdout
    assert "exit codes: 0 " in done.stdout and "--verbose" in done.stdout


def test_the_readme_table_of_exit_codes_is_the_programs() -> None:
    """The README's rows say what `cli_args.EXITS` (the help) says, verb by verb."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| command | 0 (done) | 1 (a push or a read failed) |", 1)[1]
    lines = table.split("\n\n", 1)[0].splitlines()[2:]  # after the header and |---|
    rows = {}
    for line in lines:
        verb, *cells = (c.strip() for c in line.strip("|").split("|"))
        rows[verb.strip("`")] = tuple(cells)
    assert rows == EXITS
