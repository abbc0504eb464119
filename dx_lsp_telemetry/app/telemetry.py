"""The sidecar's state and background work, independent of LSP.

Threads: the asyncio loop only decides; ledger, journal and status work runs on one `io`
thread (so the ledger view has a single owner), pushes on one `push` thread. Neither is
joined at exit, so a push in flight can never delay the editor's shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from dx_lsp_telemetry.push.config import push_target
from dx_lsp_telemetry.push.editor_settings import save_editor_settings
from dx_lsp_telemetry.push.pusher import (
    ConfigurationError,
    PushBusy,
    PushError,
)
from dx_lsp_telemetry.settings.managed import apply_managed
from dx_lsp_telemetry.settings.settings import SECTION, ParsedSettings, Settings, parse_settings

if TYPE_CHECKING:
    pass
from dx_lsp_telemetry.app.reader import ReaderForwarding
from dx_lsp_telemetry.app.recording import Recording
from dx_lsp_telemetry.app.schedule import PushLoop
from dx_lsp_telemetry.app.status_view import StatusView

log = logging.getLogger(__name__)


class Telemetry(Recording, StatusView, ReaderForwarding, PushLoop):
    """The sidecar: its settings and lifecycle here; its parts in the mixins, on `AppState`."""

    # -- settings ----------------------------------------------------------------------

    def configure(self, raw: Any) -> None:
        """Apply the editor's `dxTelemetry` section; takes effect at once."""
        self._raw_settings = raw
        self._apply_settings()

    def _apply_settings(self) -> None:
        """The editor's section with the managed configuration on top, in effect at once."""
        previous = self._parsed
        before = previous.settings
        self._managed_config = self._managed.current()
        self._parsed = apply_managed(self._raw_settings, self._managed_config, self._env)
        self._log_problems(previous)
        self._log_managed()
        after = self._parsed.settings
        self._save_settings(after)
        if self._loop is None:
            return
        if push_target(before, self._token) != push_target(after, self._token) or (
            (before.flush_enabled, before.flush_delay_seconds, before.enabled)
            != (after.flush_enabled, after.flush_delay_seconds, after.enabled)
        ):
            self._request_cycle()
        if before.enabled != after.enabled:
            self._apply_enabled()
        if self._sources is not None:
            self._sources.apply(after)
        self._apply_otlp()
        self._mark_dirty()

    def _log_problems(self, previous: ParsedSettings) -> None:
        """One line for what is wrong that was not before: the same bad settings sent again
        log nothing, and a flood of changes stays a few lines (status lists every problem)."""
        known_problems, known_unknown = set(previous.problems), set(previous.unknown)
        problems = [p for p in self._parsed.problems if p not in known_problems]
        unknown = [k for k in self._parsed.unknown if k not in known_unknown]
        if not (problems or unknown):
            return
        n = self._settings_throttle("settings")
        if n is None:
            return
        parts = []
        managed = set(self._managed_config.problems)
        if mine := [p for p in problems if p not in managed]:
            parts.append("setting ignored, default used: " + _first(mine, "; "))
        if theirs := [p for p in problems if p in managed]:
            parts.append("managed setting ignored: " + _first(theirs, "; "))
        if unknown:
            keys = [k if len(k) <= 80 else k[:77] + "..." for k in unknown]
            parts.append("unknown setting ignored: " + _first(keys, ", "))
        log.warning("%s%s", "; ".join(parts), f" ({n} such changes so far)" if n > 3 else "")

    def _log_managed(self) -> None:
        """Once per change: which sources manage what, and which editor values they override
        (keys and sources only: no values)."""
        managed = self._parsed.managed
        values: dict[str, dict[str, Any]] = managed.get("values", {})
        overrides: list[str] = managed.get("overrides", [])
        shown = (tuple((k, v["from"]) for k, v in values.items()), tuple(overrides))
        if shown == self._logged_managed:
            return
        first = not self._logged_managed
        self._logged_managed = shown
        if not values:
            if not first:
                log.info("no managed settings any more: the editor's settings apply")
            return
        by_source: dict[str, list[str]] = {}
        for key, value in values.items():
            by_source.setdefault(value["from"], []).append(key)
        log.info(
            "managed settings: %s",
            "; ".join(f"{', '.join(keys)} from {origin}" for origin, keys in by_source.items()),
        )
        if overrides:
            log.info(
                "managed settings override the editor's %s",
                ", ".join(f"{SECTION}.{k}" for k in overrides),
            )

    def _check_managed(self) -> None:
        """A managed source that changed applies at once, in every window (each looks)."""
        version = self._managed.version
        try:
            self._managed.current()
            if self._managed.version != version:
                self._apply_settings()
        except Exception:  # never the end of the loop that shows other windows' work
            log.exception("cannot apply the managed settings")

    def _save_settings(self, effective: Settings) -> None:
        """So `dx-lsp-telemetry` in a terminal pushes as the editor would, and reads each day's
        state for this destination. The CLI applies the managed configuration itself: it gets
        the editor's own section, and the destination as this window uses it."""
        try:
            section = parse_settings(self._raw_settings, self._env).settings
            save_editor_settings(self.paths, section, effective)
        except OSError as exc:
            log.warning("cannot save settings for the CLI in %s: %s", self.paths.home, exc.strerror)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._check_clock()
        await self._run_io(self._prepare_storage)
        if self.settings.enabled and self._storage_problem is None and not self.reader:
            self._spawn(self._settle_interrupted())
        self._spawn(self._leader_loop())
        self._spawn(self._day_loop())
        self._spawn(self._notify_loop())
        self._spawn(self._others_loop())
        self._apply_otlp()
        self._apply_enabled()
        self._mark_dirty()

    async def _settle_interrupted(self) -> None:
        """A push cut short by a crash shows as `unconfirmed` from this window's start."""
        try:
            await self._run_push(self._pusher.settle_interrupted)
        except OSError as exc:
            log.warning("cannot check the journal for interrupted pushes: %s", exc)
        self._mark_dirty()

    def _prepare_storage(self) -> None:
        try:
            self.paths.ensure()
            probe = self.paths.home / f".probe.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            self._storage_problem = None
        except OSError as exc:
            self._storage_problem = (
                f"the data folder {self.paths.home} is not usable ({exc.strerror}): nothing can be "
                "recorded; fix its permissions or set DX_TELEMETRY_HOME"
            )
            log.error("%s", self._storage_problem)

    def _apply_enabled(self) -> None:
        if self.settings.enabled and self._loop is not None:
            self._spawn(self._run_io(self._write_marker))

    async def stop(self) -> None:
        """Quick and local: no network. A push in flight is left to the next start to judge."""
        if self._sources is not None:
            self._sources.stop()
        if self._otlp is not None:
            await self._otlp.stop()
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self._run_io(self._final_sync), timeout=1.0)
        except (asyncio.TimeoutError, OSError) as exc:
            log.warning("final ledger sync skipped: %s", exc)

    def sync_to_disk(self) -> None:
        """Last words after the loop has ended (stdin closed, `exit`): fsync, nothing else."""
        self._writer.sync()

    def _final_sync(self) -> None:
        self._writer.sync()
        if self.leader:
            self._leader_lock.release(force=True)


def _first(items: list[str], sep: str, count: int = 5) -> str:
    more = f"{sep}and {len(items) - count} more" if len(items) > count else ""
    return sep.join(items[:count]) + more


__all__ = ["ConfigurationError", "PushBusy", "PushError", "Telemetry"]
