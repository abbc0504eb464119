"""The command line's grammar: each verb, its options and their help, its exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date

from dx_lsp_telemetry import __version__

PROG = "dx-lsp-telemetry"
_EDITOR_FLAGS = ("--stdio", "--clientProcessId", "--node-ipc")
#: `record --json` with no EVENT: the event comes as field options, the answer as JSON
JSON_ANSWER_ONLY = object()

_UNUSABLE = "bad usage, or an unusable data folder"
#: per verb: what exit 0, 1 and 2 mean (the README's table says the same; a test holds them
#: to it)
EXITS: dict[str, tuple[str, str, str]] = {
    "status": (
        "shown, configuration problems included (config.ok tells them)",
        "the ledger could not be read",
        _UNUSABLE,
    ),
    "report": ("shown", "the ledger could not be read", _UNUSABLE),
    "record": (
        "recorded, or already there (a duplicate)",
        "the ledger could not be written",
        "a bad event, no tool, the enabled setting off, " + _UNUSABLE,
    ),
    "flush": (
        "every due day pushed or written to the outbox, or none due; a dry run shown (with a "
        "warning if its records could not be pushed)",
        "a day failed or is unconfirmed, another process held the push lock, or the ledger "
        "could not be read",
        "configuration that stops every push (email, tool, token, instance URL), a day that "
        "cannot be re-sent or marked, " + _UNUSABLE,
    ),
    "sources": ("shown", "-", _UNUSABLE),
    "scan": (
        "read; what a readable log holds that its source cannot use is skipped and named (a "
        "warning)",
        "a log file could not be read (permissions, I/O), or another process held the "
        "source's logs",
        "an unknown source, none enabled, a --path that does not exist, " + _UNUSABLE,
    ),
}


def strip_editor_flags(argv: list[str]) -> tuple[list[str], int | None]:
    """vscode-languageclient may add `--stdio` and `--clientProcessId=N`: accepted, ignored."""
    kept: list[str] = []
    client_pid: int | None = None
    it = iter(argv)
    for arg in it:
        name, _, value = arg.partition("=")
        if name not in _EDITOR_FLAGS:
            kept.append(arg)
            continue
        if name == "--clientProcessId":
            value = value or next(it, "")
            client_pid = int(value) if value.isdigit() else None
    return kept, client_pid


class Grammar:
    """The parser, and each verb's own (whose usage an error in that verb shows)."""

    def __init__(self) -> None:
        self.parser, self.verbs = _build()

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """`parse_args`, except that an unknown option is refused with its verb's usage
        (`record --bogus 3`), not the top-level one."""
        args, extras = self.parser.parse_known_args(argv)
        if extras:
            verb = self.verbs.get(args.verb or "", self.parser)
            verb.error(f"unrecognized arguments: {' '.join(extras)}")
        return args

    def help_if_bare(self, argv: Sequence[str]) -> bool:
        """Bare, on a terminal: help instead of waiting for LSP on stdin."""
        if argv or not sys.stdin.isatty():
            return False
        self.parser.print_help()
        return True


def json_number(text: str) -> int | float:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Records AI-assistant token usage in a local daily ledger and pushes each "
        "completed day to DX Data Cloud. With no command (stdin not a terminal) it is the "
        "LSP sidecar. It reads the data folder DX_TELEMETRY_HOME, the settings the editor "
        "last gave the sidecar, and DX_TELEMETRY_EMAIL, DX_TELEMETRY_TOOL, "
        "DX_TELEMETRY_INSTANCE_URL and DX_DATA_CLOUD_TOKEN where those are empty.",
        epilog=f"`{PROG} COMMAND --help` describes a command and its exit codes.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", help="also print what it does, as it does it"
    )
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")

    def verb(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        exits = EXITS.get(name)
        epilog = None
        if exits:
            epilog = "exit codes: " + "; ".join(
                f"{code} {text}" for code, text in enumerate(exits) if text != "-"
            )
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            parents=[common] if exits else [],
        )

    serve = verb(
        "serve",
        "the LSP sidecar over stdio (what the editor starts)",
        "Speaks LSP over stdio: what the editor starts. Also what runs with no command when "
        "stdin is not a terminal.",
    )
    serve.add_argument(
        "--reader",
        action="store_true",
        help="a remote host's reader (DX Telemetry Remote Reader): reads this host's AI tools' "
        "logs into <data folder>/remote-reader and forwards them to your own machine; never pushes",
    )

    s = verb(
        "status",
        "configuration problems, today, recent days and push states",
        "Shows what stops a push (configuration problems), where days go, today's usage per "
        "tool and each day of the backfill window with its push state.",
    )
    s.add_argument("--json", action="store_true", help="print the dxTelemetry/status object")

    r = verb(
        "report",
        "daily totals per tool, with a bar per day",
        "Daily totals per tool for the last N days, late events included, with a bar per day.",
    )
    r.add_argument(
        "--days", type=int, default=14, help="how many days including today (default 14)"
    )
    r.add_argument("--json", action="store_true", help='print {"days": [...]} for scripts')

    _record(
        verb(
            "record",
            "record one usage event (same rules as dxTelemetry/recordUsage)",
            "Records one usage event in the ledger, with the same rules as the editor's "
            "dxTelemetry/recordUsage: for tools outside the editor.",
        )
    )
    _flush(
        verb(
            "flush",
            "push due days now (as the Flush Now command)",
            "Pushes every complete, unpushed day of the backfill window now, oldest first (as "
            "DX Telemetry: Flush Now). --resend and --mark-pushed settle an unconfirmed day.",
        )
    )

    src = verb(
        "sources",
        "each AI tool log source: where it looks, what it found",
        "Each AI tool log source: enabled or not, where it looks, what it found, its last error.",
    )
    src.add_argument("--json", action="store_true", help='print {"sources": [...]} for scripts')

    _scan(
        verb(
            "scan",
            "ingest local AI tool logs once, without the editor",
            "Reads AI tools' own local logs into the ledger once. Scanning twice adds nothing.",
        )
    )

    verb(
        "demo",
        "a walk-through on a temporary home: sidecar, events, outbox",
        "A walk-through on a temporary data folder: a real sidecar driven over LSP as the "
        "editor drives it, events recorded, and the record yesterday's push would send.",
    )
    return p, dict(sub.choices)


def _record(rec: argparse.ArgumentParser) -> None:
    rec.add_argument(
        "--json",
        dest="event_json",
        nargs="?",
        const=JSON_ANSWER_ONLY,
        metavar="EVENT",
        help="print the answer as JSON; with EVENT, the whole event as one JSON object "
        "(then no field options)",
    )
    rec.add_argument(
        "--tool", help="the DX tool name (default: the tool setting, or DX_TELEMETRY_TOOL)"
    )
    rec.add_argument("--timestamp", help="RFC 3339, e.g. 2026-01-15T09:30:00Z (default: now)")
    rec.add_argument(
        "--event-id", help="the same id again replaces the event: it never counts twice"
    )
    rec.add_argument("--model", help="the model's name, e.g. gpt-5")
    rec.add_argument("--source", help="where the event comes from (free text, e.g. api)")
    for name in ("input", "output", "cache-write", "cache-read"):
        rec.add_argument(
            f"--{name}-tokens", type=json_number, metavar="N", help=f"{name} tokens (default 0)"
        )
    money = rec.add_mutually_exclusive_group()
    money.add_argument("--spend-cents", type=json_number, metavar="X", help="spend in cents")
    money.add_argument("--cost-usd", type=json_number, metavar="X", help="spend in US dollars")
    rec.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="KEY=N",
        help="a metric summed per day (repeatable)",
    )


def _flush(f: argparse.ArgumentParser) -> None:
    f.add_argument(
        "--dry-run", action="store_true", help="show the records a push would send; send nothing"
    )
    f.add_argument(
        "--resend",
        type=iso_date,
        metavar="DATE",
        help="send an unconfirmed or failed day once more (with --tool)",
    )
    f.add_argument(
        "--mark-pushed",
        type=iso_date,
        metavar="DATE",
        help="record an unconfirmed or failed day as pushed (with --tool)",
    )
    f.add_argument("--tool", help="the tool of the day for --resend or --mark-pushed")
    f.add_argument("--json", action="store_true", help="print the outcome as JSON for scripts")


def _scan(sc: argparse.ArgumentParser) -> None:
    sc.add_argument(
        "--source",
        metavar="NAME",
        help="one source, as its label or its settings name (claude-code or claudeCode, "
        "codex, ...), scanned even if not enabled (default: every enabled source)",
    )
    sc.add_argument(
        "--path",
        metavar="DIR",
        help="read the source's logs from this folder (aider: this file) instead of its "
        "default places; needs --source",
    )
    sc.add_argument(
        "--since", type=iso_date, metavar="DATE", help="only records from this day on (YYYY-MM-DD)"
    )
    sc.add_argument("--json", action="store_true", help="print what each source read as JSON")
