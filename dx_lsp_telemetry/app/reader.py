"""A remote host's reader (`serve --reader`): its batches handed to the UI side, and its standby
where the host's own DX Telemetry already reads these logs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.app.forward import host_has_own_ledger
from dx_lsp_telemetry.push.pusher import (
    NotAllowed,
)
from dx_lsp_telemetry.settings.days import (
    format_ts,
)

if TYPE_CHECKING:
    pass
from dx_lsp_telemetry.app.state import (
    AppState,
)

log = logging.getLogger(__name__)


class ReaderForwarding(AppState):
    """`forward_take` and `forward_done`, for the UI side's sidecar."""

    async def forward_take(self, limit: int) -> dict[str, Any]:
        """The next batch of this host's events for the UI side's ledger (the leader only, so
        two windows never hand out the same events); empty in standby."""
        if self._forwarding is None:
            raise NotAllowed("forwarding is for a remote host's reader (`serve --reader`) only")
        forwarding = self._forwarding
        if not self.leader or self._check_standby():
            return {"batch": 0, "events": [], "more": False, "leader": self.leader}
        files = self._rules().window_files
        batch = await self._run_io(lambda: forwarding.take(files, limit))
        return {"batch": batch.id, "events": batch.events, "more": batch.more, "leader": True}

    async def forward_done(self, batch: int, delivered: int, problem: str | None) -> dict[str, Any]:
        """The first `delivered` events of `batch` are in the UI side's ledger."""
        if self._forwarding is None:
            raise NotAllowed("forwarding is for a remote host's reader (`serve --reader`) only")
        forwarding = self._forwarding
        before = forwarding.problem
        now = format_ts(self._clock())
        moved = await self._run_io(lambda: forwarding.done(batch, delivered, problem, now))
        if problem != before:
            if problem:
                log.warning("forwarding to your own machine failed: %s", problem)
            else:
                log.info("forwarding to your own machine works again")
        self._mark_dirty()
        files = self._rules().window_files
        left = await self._run_io(lambda: forwarding.pending(files))
        return {"moved": moved, "pending": left}

    def _check_standby(self) -> bool:
        """A reader stands by for good once this host's own DX Telemetry has a ledger."""
        if self.reader and not self._standby and host_has_own_ledger(self._env):
            self._standby = True
            log.info(
                "this host runs DX Telemetry itself, which reads and pushes its AI tools' usage: "
                "this reader forwards nothing"
            )
            if self._sources is not None:
                self._sources.stop()
                self._sources = None
            self._apply_otlp()
            self._mark_dirty()
        return self._standby
