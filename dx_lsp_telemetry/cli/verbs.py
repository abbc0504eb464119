"""The CLI's verbs that read and record: `status`, `report`, `record`, `sources`, `scan`.

Each prints for people by default and JSON with `--json`; problems go to stderr.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Run,
    UsageError,
    print_json,
    warn,
)
from dx_lsp_telemetry.cli.render import plural
from dx_lsp_telemetry.push.config import destination_of
from dx_lsp_telemetry.record.events import EventRules, validate_event
from dx_lsp_telemetry.settings.days import day_of, utc_now
from dx_lsp_telemetry.settings.problems import problem, setting

#: processes that may share a long `scan` (an initial read of a large history)
SCAN_WORKERS = 2


def destination_address(run: Run) -> str:
    """Where pushes go, as a person looks for it: the instance URL or the outbox folder."""
    destination = destination_of(run.parsed.settings)
    if destination == "dx":
        return run.parsed.settings.instance_url
    return str(run.paths.outbox_dir) if destination == "outbox" else ""


def status(run: Run) -> int:
    from dx_lsp_telemetry.cli.render import status_text
    from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
    from dx_lsp_telemetry.push.journal import Journal
    from dx_lsp_telemetry.push.status import LEDGER_UNREADABLE, StatusInputs, build_status

    paths, parsed = run.paths, run.parsed
    inputs = StatusInputs(
        paths.home,
        False,
        parsed.settings,
        list(parsed.problems),
        run.token,
        utc_now(),
        managed=parsed.managed,
        namer=run.namer,
    )
    shown = build_status(inputs, LedgerIndex(paths.ledger_dir), Journal(paths.journal_file))
    if run.args.json:
        print_json(shown)
    else:
        print(status_text(shown, destination_address(run)))
    unreadable = any(p.startswith(LEDGER_UNREADABLE) for p in shown["config"]["problems"])
    return EXIT_FAILED if unreadable else EXIT_OK


def report(run: Run) -> int:
    from dx_lsp_telemetry.cli.render import report_text
    from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
    from dx_lsp_telemetry.push.journal import Journal
    from dx_lsp_telemetry.push.status import day_entries

    args = run.args
    if not 1 <= args.days <= 3650:
        raise UsageError(f"--days: expected 1 to 3650, got {args.days}")
    settings = run.parsed.settings
    today = day_of(utc_now(), settings.day_boundary)
    days = [today - timedelta(days=i) for i in range(args.days)]
    index = LedgerIndex(run.paths.ledger_dir)
    index.refresh()
    journal = Journal(run.paths.journal_file)
    journal.load()
    entries = day_entries(index, journal, settings, run.token, days, today, split_late=False)
    shown = {"days": entries}
    if args.json:
        print_json(shown)
    else:
        print(report_text(shown))
    return EXIT_OK


_RECORD_FIELDS = (
    "tool",
    "timestamp",
    "event_id",
    "model",
    "source",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "spend_cents",
    "cost_usd",
)


def record(run: Run) -> int:
    import json

    from dx_lsp_telemetry.ledger.ledger import LedgerWriter
    from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
    from dx_lsp_telemetry.ledger.recorder import record_event

    args, settings = run.args, run.parsed.settings
    whole = args.event_json if isinstance(args.event_json, str) else None
    if whole is not None:
        if any(getattr(args, k) is not None for k in _RECORD_FIELDS) or args.metric:
            raise UsageError("--json EVENT is the whole event: give no field options with it")
        try:
            raw = json.loads(whole)
        except ValueError as exc:
            raise UsageError(f"--json: not valid JSON ({exc})") from None
    else:
        raw = {k: getattr(args, k) for k in _RECORD_FIELDS if getattr(args, k) is not None}
        if args.metric:
            raw["metrics"] = dict(_metric(m) for m in args.metric)
    if not settings.enabled:
        raise UsageError(
            problem(setting("enabled"), " is off: nothing is recorded").render(run.namer)
        )
    rules = EventRules(settings.tool, utc_now(), settings.day_boundary, settings.backfill_days)
    event = validate_event(raw, rules)
    run.paths.ensure()
    ledger = run.paths.ledger_dir
    answer = record_event(
        LedgerWriter(ledger),
        LedgerIndex(ledger),
        event,
        settings.day_boundary,
        window=rules.window_files,
    )
    if args.event_json is not None:  # `--json`, bare or with the event
        print_json(answer)
    elif answer["duplicate"]:
        print(
            f"event {answer['event_id']} of {answer['tool']} on {answer['date']} was recorded "
            "before: it counts once (the version with more tokens)"
        )
    else:
        print(f"recorded event {answer['event_id']} of {answer['tool']} on {answer['date']}")
    return EXIT_OK


def _metric(text: str) -> tuple[str, int | float]:
    import argparse

    from dx_lsp_telemetry.cli.args import json_number

    key, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"--metric: expected KEY=N, got {text!r}")
    try:
        return key, json_number(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--metric {key}: {exc}") from None


def sources(run: Run) -> int:
    from dx_lsp_telemetry.sources.runner import describe, sources_text

    rows = describe(run.paths, run.parsed.settings, os.environ)
    if run.args.json:
        print_json({"sources": rows})
    else:
        print(sources_text(rows))
    return EXIT_OK


def scan(run: Run) -> int:
    from dx_lsp_telemetry.sources.registry import SOURCES, by_label, homes_for
    from dx_lsp_telemetry.sources.runner import scan as scan_sources

    args, settings = run.args, run.parsed.settings
    if args.source:
        chosen = by_label(args.source)
        if chosen is None:
            known = ", ".join(f"{c.label} ({c.name})" for c in SOURCES.values())
            raise UsageError(f"--source: unknown source {args.source!r} (known: {known})")
        names = [chosen.name]
    else:
        names = [n for n, s in settings.sources.items() if s.enabled and n in SOURCES]
        if not names:
            raise UsageError(
                "no source is enabled (the editor's dxTelemetry.sources.<name>.enabled): "
                "name one with --source"
            )
    path = args.path or ""
    if path:
        if len(names) != 1:
            raise UsageError("--path reads one source's logs: give --source too")
        if not Path(path).expanduser().exists():
            raise UsageError(f"--path {path}: no such file or folder")
    found = scan_sources(
        run.paths, settings, os.environ, names, path=path, since=args.since, workers=SCAN_WORKERS
    )
    unread = 0
    shown: dict[str, Any] = {}
    for name in names:
        source = SOURCES[name]()
        stats = found[source.label]
        unread += stats.unread
        shown[source.label] = {**stats.to_json(), "unreadFiles": stats.unread}
        if not args.json:
            homes = [str(h) for h in homes_for(source, settings, os.environ, path)]
            print(_scan_line(source.label, stats.files, stats.records, stats.skipped, homes))
        for text in stats.problems:
            warn(f"{source.label}: {text}")
    if args.json:
        print_json({"sources": shown})
    if unread:
        print(f"error: {plural(unread, 'log')} could not be read (named above)", file=sys.stderr)
    return EXIT_FAILED if unread else EXIT_OK


def _scan_line(label: str, files: int, records: int, skipped: int, homes: list[str]) -> str:
    if not files:
        return f"{label}: no log files found (looked in {', '.join(homes) or 'no folder'})"
    line = f"{label}: {plural(files, 'file')}, {plural(records, 'record')} read"
    return line + (f", {skipped:,} skipped" if skipped else "")


VERBS = {
    "status": status,
    "report": report,
    "record": record,
    "sources": sources,
    "scan": scan,
}
