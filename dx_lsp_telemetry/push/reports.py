"""What a push cycle answers: the report of what it did, the record of a due day, and the
errors that stop it before anything is sent (configuration, a refused request, the lock held)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dx_lsp_telemetry.push.journal import JournalEntry
from dx_lsp_telemetry.record.summary import record_hash
from dx_lsp_telemetry.settings.problems import Namer, Problem


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
    """Each day a cycle tried, under the state it left (README's states table), and the days
    it did not try because they are `expired`."""

    pushed: list[dict[str, str]] = field(default_factory=list)
    #: DX refused the record (or the token, or the URL)
    failed: list[dict[str, str]] = field(default_factory=list)
    #: DX was not reached, or asked to wait: `retryAt`, `error`
    pending: list[dict[str, str]] = field(default_factory=list)
    unconfirmed: list[dict[str, str]] = field(default_factory=list)
    #: a manual cycle's days older than the window, never pushed: not tried (`flush --resend`)
    expired: list[dict[str, str]] = field(default_factory=list)
    #: DX looked unwell (ambiguous answer): the rest of the days wait for a later cycle
    stopped_early: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pushed": self.pushed,
            "failed": self.failed,
            "pending": self.pending,
            "unconfirmed": self.unconfirmed,
            "expired": self.expired,
        }

    @property
    def ok(self) -> bool:
        """Every day tried is done (expired ones were not tried: nothing failed)."""
        return not self.failed and not self.pending and not self.unconfirmed


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
