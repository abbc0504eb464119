"""What every CLI verb shares: its inputs, its exit codes, and its words for what a message is
about (its own options and environment variables, where the editor names its settings)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.settings.problems import TOKEN_ENV, Term
from dx_lsp_telemetry.settings.settings import SECTION, ParsedSettings, env_fallback

#: 0 done; 1 a push or a read failed; 2 bad usage or configuration (README: per verb)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: settings whose value may come from the editor's saved settings or a DX_TELEMETRY_* variable
FALLBACK_KEYS = ("email", "tool", "instanceUrl")


class UsageError(Exception):
    """Bad usage of a verb: exit 2, the message to stderr."""


@dataclass(frozen=True)
class CliNamer:
    """`problems.Namer` for a terminal: a setting is named by the variable that sets it here
    (`DX_TELEMETRY_EMAIL`), unless its value came from the editor's saved settings (the fix is
    there); an event field by `record`'s option (`--input-tokens`) or, for `record --json`, by
    its own key; the whole event is `--json`."""

    #: the FALLBACK_KEYS whose value is the editor's (saved in the data folder's settings.json)
    from_editor: frozenset[str] = frozenset()
    #: `record` got its event as field options, not `--json`
    event_options: bool = False

    def __call__(self, term: Term) -> str:
        if term.kind == "setting":
            return self._setting(term.key)
        if term.kind == "field":
            return self._field(term.key)
        if term.key == "token":
            return "export it in this shell (the editor keeps its token to itself)"
        return f"set {self._setting(term.key)}"

    def _setting(self, key: str) -> str:
        if key == "token":
            return TOKEN_ENV
        env = env_fallback(key)
        if env is None:
            return f"{SECTION}.{key}"  # no variable sets it: only the editor's settings do
        if key in self.from_editor:
            return f"{SECTION}.{key} (from the editor's settings)"
        return env

    def _field(self, name: str) -> str:
        if name == "event":
            return "--json"
        if not self.event_options:
            return name  # a key of the JSON the user wrote
        metric, dot, key = name.partition(".")
        if metric == "metrics":
            return f"--metric {key}" if dot else "--metric"
        return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Run:
    """One verb's inputs."""

    args: argparse.Namespace
    paths: DataPaths
    parsed: ParsedSettings
    token: str | None
    namer: CliNamer


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)
