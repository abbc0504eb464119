"""`dx-lsp-telemetry VERB` (also `python -m dx_lsp_telemetry VERB`). No verb: the LSP sidecar.

Exit codes: 0 success, 1 a push failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from dx_lsp_telemetry import __version__
from dx_lsp_telemetry.config import TOKEN_ENV
from dx_lsp_telemetry.days import day_of, utc_now
from dx_lsp_telemetry.events import EventError, EventRules, validate_event
from dx_lsp_telemetry.ledger import LedgerError, LedgerWriter
from dx_lsp_telemetry.logs import setup_logging
from dx_lsp_telemetry.paths import DataPaths, resolve_home
from dx_lsp_telemetry.settings import ParsedSettings

# each verb imports what only it needs: a `scan` starts sooner
if TYPE_CHECKING:
    from dx_lsp_telemetry.pusher import CycleReport

EXIT_OK, EXIT_PUSH_FAILED, EXIT_USAGE = 0, 1, 2
#: processes that may share a long `scan` (an initial read of a large history)
SCAN_WORKERS = 2
_EDITOR_FLAGS = ("--stdio", "--clientProcessId", "--node-ipc")


class UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    args_in, client_pid = _strip_editor_flags(args_in)
    parser = _parser()
    if not args_in and sys.stdin.isatty():
        parser.print_help()
        return EXIT_OK
    args = parser.parse_args(args_in)
    verb = args.verb or "serve"
    token = os.environ.get(TOKEN_ENV) or None
    setup_logging(token, logging.INFO if verb in ("serve", "flush") else logging.WARNING)
    if verb == "serve":
        from dx_lsp_telemetry.sidecar import serve

        return serve(client_pid)
    if verb == "demo":
        from dx_lsp_telemetry.demo import run_demo

        return run_demo()
    paths = resolve_home()
    try:
        return int(_VERBS[verb](args, paths, _cli_settings(paths), token))
    except _usage_errors() as exc:
        print(f"dx-lsp-telemetry {verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _push_errors() as exc:
        print(f"dx-lsp-telemetry {verb}: {exc}", file=sys.stderr)
        return EXIT_PUSH_FAILED
    except OSError as exc:  # e.g. DX_TELEMETRY_HOME under a file, or not writable
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"dx-lsp-telemetry {verb}: the data folder is not usable{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _usage_errors() -> tuple[type[Exception], ...]:
    from dx_lsp_telemetry.pusher import ConfigurationError, NotAllowed

    return (UsageError, EventError, ConfigurationError, NotAllowed)


def _push_errors() -> tuple[type[Exception], ...]:
    from dx_lsp_telemetry.pusher import PushError

    return (PushError, LedgerError)


def _strip_editor_flags(argv: list[str]) -> tuple[list[str], int | None]:
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dx-lsp-telemetry",
        description="Records AI-assistant token usage in a local daily ledger and pushes each "
        "completed day to DX Data Cloud. With no command (stdin not a terminal) it is the "
        "LSP sidecar.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    sub.add_parser("serve", help="the LSP sidecar over stdio (what the editor starts)")

    s = sub.add_parser("status", help="configuration problems, today, recent days and push states")
    s.add_argument("--json", action="store_true", help="print the dxTelemetry/status object")

    r = sub.add_parser("report", help="daily totals per tool, with a bar per day")
    r.add_argument(
        "--days", type=int, default=14, help="how many days including today (default 14)"
    )
    r.add_argument("--json", action="store_true")

    rec = sub.add_parser(
        "record", help="record one usage event (same rules as dxTelemetry/recordUsage)"
    )
    rec.add_argument("--json", dest="event_json", metavar="EVENT", help="the whole event as JSON")
    rec.add_argument("--tool", help="DX tool name (default: DX_TELEMETRY_TOOL / the tool setting)")
    rec.add_argument("--timestamp", help="RFC 3339, e.g. 2026-01-15T09:30:00Z (default: now)")
    rec.add_argument("--event-id", help="the same id again replaces the event, never counts twice")
    rec.add_argument("--model")
    rec.add_argument("--source")
    for name in ("input", "output", "cache-write", "cache-read"):
        rec.add_argument(f"--{name}-tokens", type=_json_number, metavar="N")
    money = rec.add_mutually_exclusive_group()
    money.add_argument("--spend-cents", type=_json_number, metavar="X")
    money.add_argument("--cost-usd", type=_json_number, metavar="X")
    rec.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="KEY=N",
        help="a metric summed per day (repeatable)",
    )

    f = sub.add_parser("flush", help="push due days now (as the Flush Now command)")
    f.add_argument("--dry-run", action="store_true", help="print the records instead of sending")
    f.add_argument("--resend", metavar="DATE", help="send an unconfirmed or failed day once more")
    f.add_argument("--mark-pushed", metavar="DATE", help="record an unconfirmed day as pushed")
    f.add_argument("--tool", help="the tool of the day for --resend / --mark-pushed")

    src = sub.add_parser("sources", help="each AI tool log source: where it looks, what it found")
    src.add_argument("--json", action="store_true")

    sc = sub.add_parser("scan", help="ingest local AI tool logs once, without the editor")
    sc.add_argument(
        "--source",
        metavar="NAME",
        help="one source (claude-code, codex, ...), scanned even if not enabled",
    )
    sc.add_argument("--path", metavar="DIR", help="read from this folder instead of the defaults")
    sc.add_argument("--since", metavar="DATE", help="only records from this day on (YYYY-MM-DD)")

    sub.add_parser("demo", help="a walk-through on a temporary home: sidecar, events, outbox")
    return p


def _json_number(text: str) -> int | float:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def _cli_settings(paths: DataPaths) -> ParsedSettings:
    """The machine's managed configuration, then the editor's last settings and destination
    (saved by the sidecar), then, where no editor saved any, the DX_TELEMETRY_* fallbacks."""
    from dx_lsp_telemetry.editor_settings import read_editor_settings
    from dx_lsp_telemetry.managed import ManagedSettings
    from dx_lsp_telemetry.managed_sources import machine_sources

    def warn(text: str) -> None:
        print(f"dx-lsp-telemetry: {text}", file=sys.stderr)

    managed = ManagedSettings(machine_sources()).current()
    return read_editor_settings(paths, managed, os.environ, warn)


def _status(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.journal import Journal
    from dx_lsp_telemetry.ledger_index import LedgerIndex
    from dx_lsp_telemetry.render import status_text
    from dx_lsp_telemetry.status import StatusInputs, build_status

    inputs = StatusInputs(
        paths.home, False, parsed.settings, list(parsed.problems), token, utc_now(), parsed.managed
    )
    status = build_status(inputs, LedgerIndex(paths.ledger_dir), Journal(paths.journal_file))
    print(json.dumps(status, indent=2) if args.json else status_text(status))
    return EXIT_OK


def _report(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.journal import Journal
    from dx_lsp_telemetry.ledger_index import LedgerIndex
    from dx_lsp_telemetry.render import report_text
    from dx_lsp_telemetry.status import day_entries

    if not 1 <= args.days <= 3650:
        raise UsageError(f"--days: expected 1 to 3650, got {args.days}")
    settings = parsed.settings
    today = day_of(utc_now(), settings.day_boundary)
    days = [today - timedelta(days=i) for i in range(args.days)]
    index = LedgerIndex(paths.ledger_dir)
    index.refresh()
    journal = Journal(paths.journal_file)
    journal.load()
    report = {"days": day_entries(index, journal, settings, token, days, today, split_late=False)}
    print(json.dumps(report, indent=2) if args.json else report_text(report))
    return EXIT_OK


def _record(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.ledger_index import LedgerIndex
    from dx_lsp_telemetry.recorder import record_event

    settings = parsed.settings
    if args.event_json is not None:
        if any(getattr(args, k) is not None for k in _RECORD_FIELDS) or args.metric:
            raise UsageError("--json takes the whole event; give no other field options with it")
        try:
            raw = json.loads(args.event_json)
        except ValueError as exc:
            raise UsageError(f"--json: not valid JSON ({exc})") from None
    else:
        raw = {
            field: getattr(args, attr)
            for attr, field in _RECORD_FIELDS.items()
            if getattr(args, attr) is not None
        }
        if args.metric:
            raw["metrics"] = dict(_metric(m) for m in args.metric)
    if not settings.enabled:
        raise UsageError("dxTelemetry.enabled is off: nothing is recorded")
    rules = EventRules(settings.tool, utc_now(), settings.day_boundary, settings.backfill_days)
    event = validate_event(raw, rules)
    paths.ensure()
    result = record_event(
        LedgerWriter(paths.ledger_dir),
        LedgerIndex(paths.ledger_dir),
        event,
        settings.day_boundary,
        window=rules.window_files,
    )
    print(json.dumps(result))
    return EXIT_OK


_RECORD_FIELDS = {
    "tool": "tool",
    "timestamp": "timestamp",
    "event_id": "event_id",
    "model": "model",
    "source": "source",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "spend_cents": "spend_cents",
    "cost_usd": "cost_usd",
}


def _metric(text: str) -> tuple[str, int | float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"--metric: expected KEY=N, got {text!r}")
    try:
        return key, _json_number(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--metric {key}: {exc}") from None


def _flush(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.pusher import Pusher

    pusher = Pusher(paths)
    settings = parsed.settings
    for problem in parsed.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.resend and args.mark_pushed:
        raise UsageError("give --resend or --mark-pushed, not both")
    chosen = args.resend or args.mark_pushed
    if chosen:
        if not args.tool:
            raise UsageError("--resend and --mark-pushed need --tool")
        day = _parse_date(chosen)
        if args.mark_pushed:
            print(json.dumps(pusher.mark_pushed(settings, token, day, args.tool)))
            return EXIT_OK
        report = pusher.resend(settings, token, day, args.tool)
    elif args.dry_run:
        print(json.dumps(pusher.dry_run(settings, token), indent=2))
        return EXIT_OK
    else:
        report = pusher.cycle(settings, token, manual=True)
    print(json.dumps(report.to_json(), indent=2))
    _explain(report)
    return EXIT_OK if report.ok else EXIT_PUSH_FAILED


def _explain(report: CycleReport) -> None:
    from dx_lsp_telemetry.states import flush_lines

    if not (report.pushed or report.failed or report.pending or report.unconfirmed):
        print("nothing to push: every complete day in the window is already done", file=sys.stderr)
    for line in flush_lines(report.to_json()):
        print(line, file=sys.stderr)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _sources(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.sources.runner import describe, sources_text

    rows = describe(paths, parsed.settings, os.environ)
    print(json.dumps({"sources": rows}, indent=2) if args.json else sources_text(rows))
    return EXIT_OK


def _scan(
    args: argparse.Namespace, paths: DataPaths, parsed: ParsedSettings, token: str | None
) -> int:
    from dx_lsp_telemetry.sources.registry import SOURCES, by_label
    from dx_lsp_telemetry.sources.runner import scan

    settings = parsed.settings
    if args.source:
        chosen = by_label(args.source)
        if chosen is None:
            known = ", ".join(cls.label for cls in SOURCES.values())
            raise UsageError(f"--source: unknown source {args.source!r} (known: {known})")
        names = [chosen.name]
    else:
        names = [n for n, s in settings.sources.items() if s.enabled and n in SOURCES]
        if not names:
            raise UsageError(
                "no source is enabled (dxTelemetry.sources.<name>.enabled): name one with --source"
            )
    if args.path and len(names) != 1:
        raise UsageError("--path reads one source's folder: give --source too")
    since = _parse_date(args.since) if args.since else None
    results = scan(
        paths, settings, os.environ, names, path=args.path or "", since=since, workers=SCAN_WORKERS
    )
    failed = False
    for label, stats in results.items():
        print(
            f"{label}: {stats.files} files, {stats.records} records read"
            + (f", {stats.skipped} skipped" if stats.skipped else "")
        )
        for problem in stats.problems:
            failed = True
            print(f"  ! {problem}", file=sys.stderr)
    return EXIT_PUSH_FAILED if failed and not any(s.records for s in results.values()) else EXIT_OK


_VERBS = {
    "status": _status,
    "report": _report,
    "record": _record,
    "flush": _flush,
    "sources": _sources,
    "scan": _scan,
}
