"""One push cycle under the push lock: which days are due, and what each outcome leaves behind.

`sending` is fsynced before every POST, and a `sending` found by the next holder of the lock
means its pusher died mid-request: the day becomes `unconfirmed`, never re-sent by itself.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from dx_lsp_telemetry.ledger.daybook import read_day, refreshed_window
from dx_lsp_telemetry.ledger.ledger import fsync_path, ledger_path
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.push.config import PushTarget, push_problems, push_target
from dx_lsp_telemetry.push.journal import Journal, JournalEntry
from dx_lsp_telemetry.push.outbox import write_record
from dx_lsp_telemetry.push.outcomes import Outcome, PushResult, retry_delay
from dx_lsp_telemetry.record.summary import ToolDay, build_record
from dx_lsp_telemetry.settings.days import (
    format_ts,
    is_complete,
    shown_days,
    utc_dates_overlapping,
    utc_now,
)
from dx_lsp_telemetry.settings.problems import problem, setting
from dx_lsp_telemetry.settings.settings import Settings
from dx_lsp_telemetry.util.private import FILE_MODE, private_dir

if TYPE_CHECKING:
    from dx_lsp_telemetry.push.dx import DxClient
# the cycle's vocabulary, as its callers (the app, the server, the CLI) import it from here
from dx_lsp_telemetry.push.reports import ConfigurationError as ConfigurationError
from dx_lsp_telemetry.push.reports import CycleReport as CycleReport
from dx_lsp_telemetry.push.reports import DueRecord
from dx_lsp_telemetry.push.reports import NotAllowed as NotAllowed
from dx_lsp_telemetry.push.reports import PushBusy as PushBusy
from dx_lsp_telemetry.push.reports import PushError as PushError

log = logging.getLogger(__name__)

MANUAL_LOCK_WAIT = 10.0

ClientFactory = Callable[[str, str], "DxClient"]


def _dx_client(instance_url: str, token: str) -> DxClient:
    from dx_lsp_telemetry.push.dx import DxClient  # httpx only in a process that pushes to DX

    return DxClient(instance_url, token)


class Pusher:
    def __init__(
        self,
        paths: DataPaths,
        *,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
        client_factory: ClientFactory = _dx_client,
    ) -> None:
        self.paths = paths
        self._clock = clock
        self._jitter = jitter
        self._client_factory = client_factory
        self._lock = FileLock(paths.push_lock, mode=FILE_MODE)
        #: the target DX refused (401/403/404): background pushes wait for a new token or settings
        self.paused_for: str | None = None
        self.pause_reason: str | None = None

    # -- public operations -------------------------------------------------------------

    def cycle(self, settings: Settings, token: str | None, *, manual: bool) -> CycleReport:
        """Push every complete, unpushed day of the window, oldest first."""
        target = self._target(settings, token)
        report = CycleReport()
        if not manual and self.is_paused(target):
            return report
        with (
            self._locked(wait=MANUAL_LOCK_WAIT if manual else 0.0) as journal,
            self._index() as index,
        ):
            for due in self._due(index, journal, settings, target, manual=manual):
                if not self._push(journal, target, due, report):
                    report.stopped_early = True
                    break
            if manual:  # the user asked: say which days it will never push by itself
                report.expired = self._expired(index, journal, settings, token)
        return report

    def dry_run(self, settings: Settings, token: str | None) -> list[dict[str, Any]]:
        """The records a manual cycle would send now, sending nothing."""
        target = push_target(settings, token)
        journal = Journal(self.paths.journal_file)
        journal.load()
        with self._index() as index:
            return [d.record for d in self._due(index, journal, settings, target, manual=True)]

    def resend(self, settings: Settings, token: str | None, day: date, tool: str) -> CycleReport:
        """The user's decision on an unconfirmed or failed day: send it once more, now."""
        target = self._target(settings, token)
        report = CycleReport()
        with self._locked(wait=MANUAL_LOCK_WAIT) as journal, self._index() as index:
            self._check_day(index, settings, day, tool)
            previous = journal.get((target.destination, target.email, day.isoformat(), tool))
            if previous and previous.state in ("pushed", "outbox"):
                raise NotAllowed(
                    f"{day} {tool} was already pushed ({previous.state} at {previous.at}); "
                    "it is never sent twice"
                )
            self._push(
                journal,
                target,
                self._due_record(index, settings, target, day, tool, previous),
                report,
            )
        return report

    def mark_pushed(
        self, settings: Settings, token: str | None, day: date, tool: str
    ) -> dict[str, str]:
        """The user's decision on an unconfirmed day: DX has it, record it as pushed."""
        target = push_target(settings, token)
        with self._locked(wait=MANUAL_LOCK_WAIT) as journal:
            key = (target.destination, target.email, day.isoformat(), tool)
            previous = journal.get(key)
            if previous is None or previous.state not in ("unconfirmed", "failed"):
                state = previous.state if previous else "not pushed yet"
                raise NotAllowed(
                    f"{day} {tool} is {state}: only an unconfirmed or failed day "
                    "can be marked pushed"
                )
            journal.append(
                replace(
                    previous,
                    state="pushed",
                    at=self._now_text(),
                    marked=True,
                    error=None,
                    kind=None,
                    retry_at=None,
                    record=None,
                )
            )
        return {"date": day.isoformat(), "tool": tool, "state": "pushed"}

    def settle_interrupted(self) -> None:
        """At start-up: a `sending` left by a pusher that died becomes `unconfirmed` now, not
        at the next push cycle (a day away for a window that is not the leader). Skipped while
        another process pushes: it settles them itself."""
        try:
            with self._locked(wait=0.0):
                pass
        except PushBusy:
            pass

    def is_paused(self, target: PushTarget) -> bool:
        return self.paused_for is not None and self.paused_for == target.fingerprint()

    def next_retry(
        self, settings: Settings, token: str | None, after: datetime | None = None
    ) -> datetime | None:
        """The earliest `retryAt` (later than `after`) of a pending day of this target, for the
        schedule. `after`: what the schedule has tried already; an older day's stale `retryAt`
        (a day that left the window stays pending) must not hide a newer one."""
        target = push_target(settings, token)
        journal = Journal(self.paths.journal_file)
        journal.load()
        times = [
            e.retry_time
            for e in journal.entries()
            if e.state == "pending" and e.belongs_to(target.destination, target.email)
        ]
        return min(
            (t for t in times if t is not None and (after is None or t > after)), default=None
        )

    # -- the cycle's parts --------------------------------------------------------------

    def _target(self, settings: Settings, token: str | None) -> PushTarget:
        if not settings.enabled:
            raise ConfigurationError([problem(setting("enabled"), " is off: nothing is pushed")])
        problems = push_problems(settings, token)
        if problems:
            raise ConfigurationError(problems)
        return push_target(settings, token)

    @contextmanager
    def _index(self) -> Iterator[LedgerIndex]:
        """A connection to the ledger's index for one operation (on the push thread)."""
        index = LedgerIndex(self.paths.ledger_dir)
        try:
            yield index
        finally:
            index.close()

    @contextmanager
    def _locked(self, *, wait: float) -> Iterator[Journal]:
        private_dir(self.paths.home)
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            raise PushBusy(
                f"another window or the CLI is pushing (push lock {self.paths.push_lock} "
                f"busy for {wait:.0f} s)"
            ) from None
        try:
            journal = Journal(self.paths.journal_file)
            journal.load()
            self._settle_interrupted(journal)
            yield journal
        finally:
            self._lock.release()

    def _settle_interrupted(self, journal: Journal) -> None:
        """A `sending` line under our lock was left by a pusher that died mid-request."""
        for entry in journal.entries():
            if entry.state == "sending":
                log.warning(
                    "%s %s: a push was interrupted before DX answered; now unconfirmed",
                    entry.date,
                    entry.tool,
                )
                journal.append(
                    replace(
                        entry,
                        state="unconfirmed",
                        at=self._now_text(),
                        record=None,
                        error="a push was interrupted before DX answered (the sidecar stopped); "
                        "the record may be stored: re-send or mark it pushed",
                    )
                )

    def _due(
        self,
        index: LedgerIndex,
        journal: Journal,
        settings: Settings,
        target: PushTarget,
        *,
        manual: bool,
    ) -> Iterator[DueRecord]:
        now = self._clock()
        days = refreshed_window(index, settings, now)
        if not manual and self._waiting_to_retry(journal, target, now):
            return  # DX asked to wait (Retry-After) or was unreachable: no day goes before then
        for day in reversed(days):  # oldest first
            if not is_complete(day, now, settings.day_boundary):
                continue
            for tool in read_day(index, settings, day).tools:
                previous = journal.get((target.destination, target.email, day.isoformat(), tool))
                if not self._eligible(previous, manual=manual, now=now):
                    continue
                due = self._due_record(index, settings, target, day, tool, previous)
                if (
                    previous
                    and previous.state == "failed"
                    and previous.kind == "rejected"
                    and previous.record_hash == due.hash
                ):
                    continue  # DX refused exactly this record; only a changed one is tried
                yield due

    def _expired(
        self, index: LedgerIndex, journal: Journal, settings: Settings, token: str | None
    ) -> list[dict[str, str]]:
        """The days a status shows as `expired` (older than the window, never pushed)."""
        from dx_lsp_telemetry.push.status import (
            day_entries,  # status reads; the push does not need it
        )

        days = shown_days(self._clock(), settings.day_boundary, settings.backfill_days)
        today, older = days[0], days[settings.backfill_days + 1 :]
        return [
            {"date": e["date"], "tool": e["tool"]}
            for e in day_entries(index, journal, settings, token, older, today, split_late=False)
            if e["state"] == "expired"
        ]

    @staticmethod
    def _waiting_to_retry(journal: Journal, target: PushTarget, now: datetime) -> bool:
        return any(
            e.state == "pending" and (e.retry_time or now) > now
            for e in journal.entries()
            if e.belongs_to(target.destination, target.email)
        )

    def _eligible(self, previous: JournalEntry | None, *, manual: bool, now: datetime) -> bool:
        if previous is None:
            return True
        if previous.state in ("pushed", "outbox", "unconfirmed", "sending"):
            return False
        if previous.state == "pending" and not manual:
            retry = previous.retry_time
            return retry is None or retry <= now
        return True  # failed: rejected (if changed), or credentials/not_found after a change

    def _due_record(
        self,
        index: LedgerIndex,
        settings: Settings,
        target: PushTarget,
        day: date,
        tool: str,
        previous: JournalEntry | None,
    ) -> DueRecord:
        # events written since the window was read (a long cycle) belong in the record
        index.refresh(utc_dates_overlapping(day, day, settings.day_boundary))
        view = read_day(index, settings, day)
        sums = view.tools.get(tool) or ToolDay()
        record = build_record(
            email=target.email,
            day=day,
            tool=settings.pushed_tool(tool),  # the journal keeps the ledger's name
            sums=sums,
            model_breakdowns=settings.model_breakdowns,
        )
        return DueRecord(day, tool, record, view.cover, previous, sums.totals.to_status())

    def _check_day(self, index: LedgerIndex, settings: Settings, day: date, tool: str) -> None:
        """A day the user may send: complete, with a record; older than the window too (an
        `expired` day, pushed only when asked)."""
        now = self._clock()
        days = refreshed_window(index, settings, now)
        if day < days[-1]:
            index.refresh(utc_dates_overlapping(day, day, settings.day_boundary))
        if not is_complete(day, now, settings.day_boundary):
            raise NotAllowed(f"{day} is not complete yet; it is pushed once it is over")
        if tool not in read_day(index, settings, day).tools:
            raise NotAllowed(f"{day} has no record for tool {tool!r}")

    def _push(
        self, journal: Journal, target: PushTarget, due: DueRecord, report: CycleReport
    ) -> bool:
        """Send one record; False if the cycle should stop (DX unreachable, refusing, or unwell)."""
        item = {"date": due.day.isoformat(), "tool": due.tool}
        attempts = due.previous.attempts if due.previous and due.previous.state == "pending" else 0
        base = JournalEntry(
            destination=target.destination,
            email=target.email,
            date=item["date"],
            tool=due.tool,
            state="sending",
            at=self._now_text(),
            record_hash=due.hash,
            cover=due.cover,
            attempts=attempts,
            totals=due.totals,
        )
        for file_date in due.cover:
            fsync_path(ledger_path(self.paths.ledger_dir, date.fromisoformat(file_date)))
        journal.append(replace(base, record=due.record))

        if target.is_outbox:
            path = write_record(self.paths.outbox_dir, due.record)
            journal.append(replace(base, state="outbox", at=self._now_text()))
            report.pushed.append({**item, "destination": "outbox"})
            log.info("%s %s written to the outbox: %s", item["date"], due.tool, path)
            return True

        assert target.token is not None  # push_problems guarantees it
        with self._client_factory(target.instance_url, target.token) as client:
            result = client.push(due.record)
        return self._settle(journal, base, result, item, report, target)

    def _settle(
        self,
        journal: Journal,
        base: JournalEntry,
        result: PushResult,
        item: dict[str, str],
        report: CycleReport,
        target: PushTarget,
    ) -> bool:
        now = self._now_text()
        outcome = result.outcome
        if outcome is Outcome.SUCCESS:
            journal.append(replace(base, state="pushed", at=now, dx_id=result.dx_id))
            report.pushed.append({**item, "destination": "dx"})
            self.paused_for = self.pause_reason = None
            log.info("%s %s pushed to DX (id %s)", item["date"], item["tool"], result.dx_id)
            return True
        error = result.error or outcome.value
        log.warning("%s %s: %s", item["date"], item["tool"], error)
        if outcome in (Outcome.NOT_REACHED, Outcome.THROTTLED):
            attempts = base.attempts + 1
            delay = self.retry_delay(attempts, result.retry_after)
            retry_at = format_ts(self._clock() + timedelta(seconds=delay))
            journal.append(
                replace(
                    base,
                    state="pending",
                    at=now,
                    error=error,
                    retry_at=retry_at,
                    attempts=attempts,
                    cover={},
                    totals=None,
                )
            )
            report.pending.append({**item, "error": error, "retryAt": retry_at})
            return False
        if outcome is Outcome.AMBIGUOUS:
            journal.append(replace(base, state="unconfirmed", at=now, error=error))
            report.unconfirmed.append(item)
            return False
        kind = {Outcome.REJECTED: "rejected", Outcome.CREDENTIALS: "credentials"}.get(
            outcome, "not_found"
        )
        journal.append(
            replace(
                base,
                state="failed",
                at=now,
                error=error,
                kind=kind,  # type: ignore[arg-type]
                cover={},
                totals=None,
            )
        )
        report.failed.append({**item, "error": error})
        if outcome is Outcome.REJECTED:
            return True
        self.paused_for, self.pause_reason = target.fingerprint(), error
        return False

    def backoff(self, attempts: int) -> float:
        """Capped exponential backoff with jitter: 60 s, 120 s, ... up to 1 h, each x [0.5, 1]."""
        return retry_delay(attempts, None, self._jitter())

    def retry_delay(self, attempts: int, retry_after: float | None) -> float:
        return retry_delay(attempts, retry_after, self._jitter())

    def _now_text(self) -> str:
        return format_ts(self._clock())
