"""Recording: a `recordUsage` validated on the loop, written with others that arrived with it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.ledger.ledger import Appended, LedgerError
from dx_lsp_telemetry.ledger.recorder import (
    append_events,
    index_appended,
    not_recorded,
)
from dx_lsp_telemetry.record.events import UsageEvent, validate_event

if TYPE_CHECKING:
    pass
from dx_lsp_telemetry.app.state import (
    QUICK_INDEX_AFTER,
    QUICK_INDEX_BYTES,
    AppState,
    Done,
)

log = logging.getLogger(__name__)


class Recording(AppState):
    """`record` and its group commit on the io thread."""

    async def record(self, raw: Any) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def done(outcome: dict[str, Any] | BaseException) -> None:
            if answer.done():
                return
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

        self.submit_record(raw, done)
        return await answer

    def submit_record(self, raw: Any, done: Done) -> None:
        """Validate `raw` now (EventError names the field); `done` gets the answer once the
        event's line is written (or the error that stopped it). Events submitted together
        (one read of stdin holds many) are written together, in the order they came."""
        settings = self.settings
        self._check_clock()
        event = validate_event(raw, self._rules())
        if not settings.enabled:
            done(not_recorded(event, settings.day_boundary))
        elif self._storage_problem:
            done(LedgerError(self._storage_problem))
        else:
            if not self._queue:  # at the latest on the loop's next turn
                asyncio.get_running_loop().call_soon(self.write_queued)
            self._queue.append((event, done))

    def write_queued(self) -> None:
        """On the loop: the events queued, in one write, where that is quick (nothing to
        hand to another thread: most of a recordUsage's cost); else on the io thread. The
        transport calls this after each read of stdin, so a burst is one write."""
        if not self._queue:
            return
        queued, self._queue = self._queue, []
        events = [event for event, _ in queued]
        dones = [done for _, done in queued]
        settings = self.settings
        window = self._rules().window_files
        answers: list[dict[str, Any]] | BaseException | None = None
        if not self._io_writes:  # order: while one is on the io thread, all go there
            try:
                answers = self._quick.record(events, settings.day_boundary, window)
            except Exception as exc:
                answers = exc
        if answers is None:
            self._flush_quick()  # the io thread's index reads the ledger, ours or not
            self._io_writes += 1
            self._io.submit(self._write_on_io, events, dones)
            return
        self._answer(dones, answers)
        if self._quick.pending_bytes > QUICK_INDEX_BYTES:
            self._flush_quick()
        elif self._quick.pending_bytes and self._quick_flush is None:
            assert self._loop is not None
            self._quick_flush = self._loop.call_later(QUICK_INDEX_AFTER, self._flush_quick)

    def _flush_quick(self) -> None:
        if self._quick_flush is not None:
            self._quick_flush.cancel()
            self._quick_flush = None
        self._quick.flush()

    def _write_on_io(self, events: list[UsageEvent], dones: list[Done]) -> None:
        """On the io thread, where the index may need long work first (a rebuild)."""
        settings = self.settings
        appended: list[Appended] = []
        try:
            answers: list[dict[str, Any]] | BaseException
            answers, appended = append_events(
                self._writer,
                self._index,
                events,
                settings.day_boundary,
                window=self._rules().window_files,
            )
        except Exception as exc:
            answers = exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._answered_on_io, dones, answers)
        if appended:  # after the answers: the index is not what makes an event recorded
            index_appended(self._index, appended)

    def _answered_on_io(
        self, dones: list[Done], answers: list[dict[str, Any]] | BaseException
    ) -> None:
        self._io_writes -= 1
        self._answer(dones, answers)

    def _answer(self, dones: list[Done], answers: list[dict[str, Any]] | BaseException) -> None:
        for i, done in enumerate(dones):
            try:
                done(answers if isinstance(answers, BaseException) else answers[i])
            except Exception:
                log.exception("cannot answer a recordUsage")
        if not isinstance(answers, BaseException):
            self._schedule_fsync()
            self._mark_dirty()
