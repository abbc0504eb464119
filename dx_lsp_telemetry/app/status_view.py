"""The `dxTelemetry/status` object as the sidecar builds it: the settings' and storage's problems,
the ledger's days, the journal's states, a reader's forwarding and the OTLP receiver."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.app.forward import Forwarding
from dx_lsp_telemetry.push.config import push_target
from dx_lsp_telemetry.push.status import StatusInputs, build_status

if TYPE_CHECKING:
    pass
from dx_lsp_telemetry.app.state import (
    AppState,
)

log = logging.getLogger(__name__)


class StatusView(AppState):
    """`status`, built on the io thread."""

    async def status(self) -> dict[str, Any]:
        self._check_clock()
        return await self._run_io(self._status_sync)

    def _status_sync(self) -> dict[str, Any]:
        problems = list(self._parsed.problems)
        if self._storage_problem:
            problems.append(self._storage_problem)
        if self._forwarding is not None:
            return self._reader_status(problems, self._forwarding)
        target = push_target(self.settings, self._token)
        if self._pusher.is_paused(target):
            problems.append(
                f"pushes paused: {self._pusher.pause_reason}. They resume when the token or "
                "settings change, or with Flush Now"
            )
        otlp = self._otlp
        if otlp is not None and otlp.problem:
            problems.append(otlp.problem)
        inputs = StatusInputs(
            self.paths.home,
            self.leader,
            self.settings,
            problems,
            self._token,
            self._clock(),
            self._parsed.managed,
        )
        status = build_status(inputs, self._index, self._journal)
        status["otlp"] = otlp.status() if otlp is not None else {"state": "off"}
        return status

    def _reader_status(self, problems: list[str], forwarding: Forwarding) -> dict[str, Any]:
        """A reader's status: what this host read today, and how forwarding goes (it has no
        push states: the developer's own machine keeps those)."""
        if forwarding.problem:
            problems.append(forwarding.problem)
        inputs = StatusInputs(
            self.paths.home, self.leader, self.settings, problems, None, self._clock(), reader=True
        )
        status = build_status(inputs, self._index, self._journal)
        state = "standby" if self._standby else "forwarding" if self.leader else "follower"
        status["forward"] = {
            "state": state,
            "pending": 0 if self._standby else forwarding.pending(self._rules().window_files),
            "delivered": forwarding.delivered,
            **({"lastAt": forwarding.last_at} if forwarding.last_at else {}),
            **({"problem": forwarding.problem} if forwarding.problem else {}),
        }
        status["otlp"] = self._otlp.status() if self._otlp is not None else {"state": "off"}
        return status
