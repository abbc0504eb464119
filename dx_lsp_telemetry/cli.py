"""`dx-lsp-telemetry VERB` (also `python -m dx_lsp_telemetry VERB`). No verb: the LSP sidecar.

Exit codes: 0 done, 1 a push or a read failed, 2 bad usage or configuration (what each means
per verb: `cli_args.EXITS`, the README's table). Messages name the CLI's own options and
environment variables (`cli_common.CliNamer`), never the editor's settings where the CLI has
its own, nor LSP words.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dx_lsp_telemetry.cli_args import JSON_ANSWER_ONLY, PROG, Grammar, strip_editor_flags
from dx_lsp_telemetry.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    FALLBACK_KEYS,
    CliNamer,
    Run,
    UsageError,
)
from dx_lsp_telemetry.config import TOKEN_ENV
from dx_lsp_telemetry.events import EventError
from dx_lsp_telemetry.ledger import LedgerError
from dx_lsp_telemetry.logs import setup_cli_logging, setup_logging
from dx_lsp_telemetry.paths import DataPaths, resolve_home
from dx_lsp_telemetry.settings import ParsedSettings, parse_settings


def main(argv: Sequence[str] | None = None) -> int:
    args_in, client_pid = strip_editor_flags(list(sys.argv[1:] if argv is None else argv))
    grammar = Grammar()
    if grammar.help_if_bare(args_in):
        return EXIT_OK
    args = grammar.parse(args_in)
    verb = args.verb or "serve"
    token = os.environ.get(TOKEN_ENV) or None
    if verb == "serve":
        setup_logging(token, logging.INFO)  # the editor's output channel shows it
        from dx_lsp_telemetry.sidecar import serve

        return serve(client_pid, reader=bool(getattr(args, "reader", False)))
    if verb == "demo":
        setup_logging(token, logging.WARNING)
        from dx_lsp_telemetry.demo import run_demo

        return run_demo()
    setup_cli_logging(token, verbose=args.verbose)
    paths = resolve_home()
    parsed, from_editor = _cli_settings(paths)
    # `record`'s event as options (`--input-tokens`) unless it came whole as `--json EVENT`
    options = verb == "record" and args.event_json in (None, JSON_ANSWER_ONLY)
    namer = CliNamer(from_editor, event_options=options)
    try:
        return _verb(verb)(Run(args, paths, parsed, token, namer))
    except _usage_errors() as exc:
        return _fail(verb, _said(exc, namer), EXIT_USAGE)
    except _failures() as exc:
        return _fail(verb, _said(exc, namer), EXIT_FAILED)
    except OSError as exc:  # e.g. DX_TELEMETRY_HOME under a file, or not writable
        where = f" ({exc.filename})" if exc.filename else ""
        text = f"the data folder is not usable{where}: {exc.strerror or exc}"
        return _fail(verb, text, EXIT_USAGE)


def _verb(name: str) -> Callable[[Run], int]:
    if name == "flush":  # each verb imports what only it needs: a `scan` starts sooner
        from dx_lsp_telemetry.cli_flush import flush

        return flush
    from dx_lsp_telemetry.cli_verbs import VERBS

    return VERBS[name]


def _usage_errors() -> tuple[type[Exception], ...]:
    from dx_lsp_telemetry.pusher import ConfigurationError, NotAllowed

    return (UsageError, EventError, ConfigurationError, NotAllowed)


def _failures() -> tuple[type[Exception], ...]:
    from dx_lsp_telemetry.pusher import PushError

    return (PushError, LedgerError)


def _said(exc: Exception, namer: CliNamer) -> str:
    render: Callable[[CliNamer], str] | None = getattr(exc, "render", None)
    return render(namer) if render is not None else str(exc)


def _fail(verb: str, text: str, code: int) -> int:
    print(f"{PROG} {verb}: {text}", file=sys.stderr)
    return code


def _cli_settings(paths: DataPaths) -> tuple[ParsedSettings, frozenset[str]]:
    """The machine's managed configuration, then the editor's last settings and destination
    (saved by the sidecar), then, where no editor saved any, the DX_TELEMETRY_* fallbacks; and
    which of the fallback keys are the editor's (messages name those as the editor's)."""
    from dx_lsp_telemetry.editor_settings import DESTINATION_KEYS, read_editor_settings
    from dx_lsp_telemetry.managed import ManagedSettings
    from dx_lsp_telemetry.managed_sources import machine_sources

    def warn(text: str) -> None:
        print(f"{PROG}: {text}", file=sys.stderr)

    managed = ManagedSettings(machine_sources()).current()
    parsed = read_editor_settings(paths, managed, os.environ, warn)
    try:
        saved: Any = json.loads(paths.config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none saved (or named unreadable above): all the terminal's
        return parsed, frozenset()
    editors = parse_settings(saved, env={}).settings.to_editor_dict()
    # where an editor saved settings, the destination is always its own
    return parsed, frozenset(DESTINATION_KEYS) | {k for k in FALLBACK_KEYS if editors[k]}
