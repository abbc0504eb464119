"""The CLI's `flush`: a push cycle now, a dry run, or the user's word on one day.

People get sentences on stdout; `--json` prints the outcome for scripts, and the advice that
goes with it (what to do about an unconfirmed day) goes to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    Run,
    UsageError,
    print_json,
    warn,
)
from dx_lsp_telemetry.cli_verbs import destination_address
from dx_lsp_telemetry.config import destination_of, push_problems
from dx_lsp_telemetry.problems import Problem, problem, setting
from dx_lsp_telemetry.render import money, plural, tokens_of

if TYPE_CHECKING:
    from dx_lsp_telemetry.pusher import CycleReport

NOTHING_DUE = "nothing to push: every complete day in the window is already done"


def flush(run: Run) -> int:
    from dx_lsp_telemetry.pusher import Pusher

    args, settings = run.args, run.parsed.settings
    for text in run.parsed.problems:
        warn(text)
    if args.resend and args.mark_pushed:
        raise UsageError("give --resend or --mark-pushed, not both")
    day = args.resend or args.mark_pushed
    if day is None and args.tool:
        raise UsageError("--tool names the day's tool for --resend or --mark-pushed: give one")
    if day is not None and args.dry_run:
        raise UsageError(
            "--dry-run shows what a push cycle would send: not with --resend or --mark-pushed"
        )
    if day is not None and not args.tool:
        raise UsageError(f"--{'resend' if args.resend else 'mark-pushed'} needs --tool")
    pusher = Pusher(run.paths)
    if args.dry_run:
        return _dry_run(run, pusher.dry_run(settings, run.token))
    if args.mark_pushed:
        marked = pusher.mark_pushed(settings, run.token, day, args.tool)
        if args.json:
            print_json(marked)
        else:
            print(f"{marked['date']} {marked['tool']} is marked pushed: it is never sent again")
        return EXIT_OK
    if args.resend:
        report = pusher.resend(settings, run.token, day, args.tool)
    else:
        report = pusher.cycle(settings, run.token, manual=True)
    if args.json:
        print_json(report.to_json())
        for line in _advice(report):
            print(line, file=sys.stderr)
    else:
        print("\n".join(_outcome_lines(report, _to(run)) + _advice(report)))
    return EXIT_OK if report.ok else EXIT_FAILED


def _to(run: Run) -> str:
    where = destination_address(run)
    return f"the outbox ({where})" if destination_of(run.parsed.settings) == "outbox" else where


def _outcome_lines(report: CycleReport, to: str) -> list[str]:
    lines = []
    for item in report.pushed:
        done = "wrote" if item["destination"] == "outbox" else "pushed"
        lines.append(f"{done} {item['date']} {item['tool']} to {to}")
    return lines


def _advice(report: CycleReport) -> list[str]:
    """A line per day that did not go (failed, pending, unconfirmed, expired), with what to do."""
    from dx_lsp_telemetry.states import flush_lines

    if not (report.pushed or report.failed or report.pending or report.unconfirmed):
        return [*flush_lines(report.to_json()), NOTHING_DUE]
    return flush_lines(report.to_json())


def _dry_run(run: Run, records: list[dict[str, Any]]) -> int:
    """The records as they would be sent, and a warning where they could not be (no email)."""
    settings = run.parsed.settings
    stops: list[Problem] = (
        push_problems(settings, run.token)
        if settings.enabled
        else [problem(setting("enabled"), " is off: nothing is pushed")]
    )
    if records:
        for stop in stops:
            warn(stop.render(run.namer))  # "... is not set: days cannot be pushed"
    if run.args.json:
        print_json(records)
        return EXIT_OK
    if not records:
        print(NOTHING_DUE)
        return EXIT_OK
    print(
        f"a push now would send {plural(len(records), 'record')} to {_to(run)} "
        "(a dry run: nothing is sent; --json shows them whole):"
    )
    for r in records:
        tokens = tokens_of(r)
        print(
            f"  {r['date']}  {r['tool']:<20} {plural(r['metrics'].get('events', 0), 'event'):>13} "
            f"{plural(tokens, 'token'):>21} {money(r['spend_cents']):>10}"
            + ("" if r["is_active"] else "  (inactive day)")
        )
    return EXIT_OK
