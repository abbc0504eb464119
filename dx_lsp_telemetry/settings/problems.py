"""A problem names what it is about by key; each front end says the key in its own words.

The layers that find problems (what blocks a push, a refused event) do not know who reads them:
an editor user fixes `dxTelemetry.email`, a terminal user sets `DX_TELEMETRY_EMAIL`; an LSP
client sent `params`, a terminal user typed `--json`. So they build a `Problem` of text and
`Term`s, and the front end renders it with its `Namer`. `str(problem)` is the editor's wording,
which the status object and the LSP errors carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dx_lsp_telemetry.settings.settings import SECTION

TOKEN_ENV = "DX_DATA_CLOUD_TOKEN"

#: `setting`: a key of the settings (`email`, `flush.backfillDays`; `token` for the API token);
#: `field`: a field of a usage event (`input_tokens`; `event` for the whole event);
#: `fix`: how the reader sets the setting `key` (where that differs by front end)
TermKind = Literal["setting", "field", "fix"]


@dataclass(frozen=True)
class Term:
    kind: TermKind
    key: str


Namer = Callable[[Term], str]


def setting(key: str) -> Term:
    return Term("setting", key)


def event_field(name: str) -> Term:
    return Term("field", name)


def fix(key: str) -> Term:
    return Term("fix", key)


_EDITOR_FIXES = {"token": "run 'DX Telemetry: Set API Token' (or set it in the environment)"}


def editor_name(term: Term) -> str:
    """The editor's and the LSP interface's words: `dxTelemetry.<key>`, the event's own keys."""
    if term.kind == "setting":
        return TOKEN_ENV if term.key == "token" else f"{SECTION}.{term.key}"
    if term.kind == "field":
        return "params" if term.key == "event" else term.key  # the request's params
    return _EDITOR_FIXES.get(term.key, f"set {SECTION}.{term.key}")


@dataclass(frozen=True)
class Problem:
    parts: tuple[str | Term, ...]

    def render(self, namer: Namer = editor_name) -> str:
        return "".join(p if isinstance(p, str) else namer(p) for p in self.parts)

    def __str__(self) -> str:
        return self.render()


def problem(*parts: str | Term) -> Problem:
    return Problem(parts)
