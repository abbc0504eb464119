"""What a push cycle answers: the report of what it did, the record of a due day, and the
errors that stop it before anything is sent (configuration, a refused request, the lock held)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.push.journal import JournalEntry
from dx_lsp_telemetry.record.summary import record_hash
from dx_lsp_telemetry.settings.problems import Namer, Problem

if TYPE_CHECKING:
    pass


class PushError(Exception):
    """A push command that cannot be done as asked; the message says why."""


class ConfigurationError(PushError):
    """The settings or the token stop every push; `str()` in the editor's words."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems

    def render(self, namer: Namer) -> str:
        return "; ".join(p.render(namer) for p in self.problems)


class NotAllowed(PushError):
    """A resend or mark-pushed that the day's state does not allow: bad usage, not a failure."""


class PushBusy(PushError):
    """Another window or the CLI holds the push lock."""


@dataclass
class CycleReport:
    pushed: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unconfirmed: list[dict[str, str]] = field(default_factory=list)
    #: DX looked unwell (ambiguous answer): the rest of the days wait for a later cycle
    stopped_early: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"pushed": self.pushed, "failed": self.failed, "unconfirmed": self.unconfirmed}

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unconfirmed


@dataclass(frozen=True)
class DueRecord:
    day: date
    tool: str
    record: dict[str, Any]
    cover: dict[str, int]
    previous: JournalEntry | None
    #: the day's TOTALS as sent (fractional spend), so status shows what DX holds
    totals: dict[str, Any]

    @property
    def hash(self) -> str:
        return record_hash(self.record)
