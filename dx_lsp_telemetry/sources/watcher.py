"""Keeping enabled sources ingested inside the leader sidecar.

watchdog events are hints: they say which file to look at, soon. A periodic scan of every file
(cheap: unchanged files are skipped on size and mtime, appended ones read from their offset)
catches whatever the hints missed: an overflowing inotify queue, a network drive, a watch limit.
All reading happens on one thread of its own, never on the editor's request path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.settings import Settings
from dx_lsp_telemetry.sources.ingest import Ingestor
from dx_lsp_telemetry.sources.registry import SOURCES
from dx_lsp_telemetry.sources.runner import make_ingestor

log = logging.getLogger(__name__)

SCAN_INTERVAL_SECONDS = 60.0
#: re-reads of a file caught half-written before leaving it to the periodic scan
MAX_RETRIES = 5


@dataclass
class _Active:
    ingestor: Ingestor
    config: tuple[Any, ...]
    next_scan: float
    #: the folders watched for it: a hint is its only from there (two tools' `wants` may both
    #: match a path, e.g. `projects/…/*.jsonl` of Claude Code and of Qwen Code)
    roots: tuple[str, ...] = ()

    def owns(self, path: Path) -> bool:
        if not self.ingestor.source.wants(path):
            return False
        text = str(path)
        return not self.roots or any(text.startswith(os.path.join(r, "")) for r in self.roots)


class SourceWatcher:
    def __init__(
        self,
        paths: DataPaths,
        env: Mapping[str, str],
        *,
        on_ingested: Callable[[], None] = lambda: None,
    ) -> None:
        self.paths = paths
        #: told (from the reading thread) when records reached the ledger
        self._on_ingested = on_ingested
        self._env = dict(env)
        self._cv = threading.Condition()
        self._active: dict[str, _Active] = {}
        self._hinted: dict[str, tuple[str, float]] = {}  # path -> (source name, due)
        self._observer: Any = None
        self._stopped = False
        self._logged: set[str] = set()
        self._retries: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="dx-sources", daemon=True)
        self._thread.start()

    def apply(self, settings: Settings) -> None:
        """Start, stop or reconfigure sources to match the settings."""
        with self._cv:
            wanted = {
                name: (s.tool, s.path, settings.spend_estimate, settings.retention_days)
                for name, s in settings.sources.items()
                if s.enabled and settings.enabled and name in SOURCES
            }
            for name in list(self._active):
                if self._active[name].config != wanted.get(name):
                    del self._active[name]
            for name, config in wanted.items():
                if name not in self._active:
                    ingestor = make_ingestor(self.paths, SOURCES[name](), settings, self._env)
                    self._active[name] = _Active(ingestor, config, next_scan=0.0)  # scan now
                    log.info(
                        "reading %s logs in %s",
                        ingestor.source.label,
                        ", ".join(map(str, ingestor.homes)) or "(no folder)",
                    )
            self._hinted = {p: h for p, h in self._hinted.items() if h[0] in self._active}
            self._cv.notify()
        self._restart_observer()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._stop_observer()

    # -- hints ------------------------------------------------------------------------------

    def hint(self, path: str) -> None:
        """A file changed (called from watchdog's thread)."""
        candidate = Path(path)
        with self._cv:
            for name, active in self._active.items():
                source = active.ingestor.source
                if active.owns(candidate):
                    # the first hint sets the time; later ones do not postpone it, so a file
                    # written continuously is still read every `debounce_seconds`
                    if path not in self._hinted:
                        self._hinted[path] = (name, time.monotonic() + source.debounce_seconds)
                    self._cv.notify()
                    return

    def _restart_observer(self) -> None:
        self._stop_observer()
        with self._cv:
            dirs: list[tuple[Path, bool]] = []  # (folder, recursive)
            for a in self._active.values():
                source = a.ingestor.source
                mine = source.watch_dirs(a.ingestor.homes)
                flat = source.flat_watch_dirs(a.ingestor.homes)
                a.roots = tuple(str(d) for d in mine + flat)
                dirs += [(d, True) for d in mine] + [(d, False) for d in flat]
        if not dirs:
            return
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        from dx_lsp_telemetry.sources.changes import CHANGES

        watcher = self

        class Hint(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write") or event.is_directory:
                    return
                watcher.hint(str(event.dest_path or event.src_path))

        observer = Observer()
        observer.daemon = True
        for directory, recursive in dirs:
            try:
                observer.schedule(Hint(), str(directory), recursive=recursive, event_filter=CHANGES)
            except OSError as exc:  # inotify watch or instance limits, permissions
                self._log_once(
                    f"cannot watch {directory} ({exc}); the periodic scan still reads it"
                )
        try:
            observer.start()
        except OSError as exc:
            self._log_once(f"cannot watch AI tool logs ({exc}); the periodic scan still reads them")
            return
        self._observer = observer

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer = None

    # -- the reading thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                work = self._next_work()
                while work is None and not self._stopped:
                    self._cv.wait(timeout=self._wait_seconds())
                    work = self._next_work()
                if self._stopped:
                    return
            assert work is not None
            ingestor, files = work
            try:
                stats = ingestor.scan() if files is None else ingestor.ingest_paths(files)
            except Exception:
                log.exception("reading %s logs failed", ingestor.source.label)
                continue
            for problem in stats.problems:
                self._log_once(f"{ingestor.source.label}: {problem}")
            self._retry_later(stats.retry, done=files or [])
            if stats.records:
                self._on_ingested()
                log.info(
                    "%s: %d records from %d files",
                    ingestor.source.label,
                    stats.records,
                    stats.files_read,
                )

    def _retry_later(self, paths: list[Path], done: list[Path]) -> None:
        """Files caught mid-rewrite are read again after their quiet time, a few times; the
        periodic scan takes over after that (a file that stays broken is not polled)."""
        with self._cv:
            for path in set(done) - set(paths):
                self._retries.pop(str(path), None)
            for path in paths:
                key = str(path)
                attempts = self._retries.get(key, 0) + 1
                if attempts > MAX_RETRIES:
                    self._retries.pop(key, None)
                    continue
                self._retries[key] = attempts
                for name, active in self._active.items():
                    if active.owns(path):
                        due = time.monotonic() + active.ingestor.source.debounce_seconds
                        self._hinted.setdefault(key, (name, due))
                        break
            self._cv.notify()

    def _next_work(self) -> tuple[Ingestor, list[Path] | None] | None:
        now = time.monotonic()
        for name, active in self._active.items():
            if active.next_scan <= now:
                active.next_scan = now + SCAN_INTERVAL_SECONDS
                self._hinted = {p: h for p, h in self._hinted.items() if h[0] != name}
                return active.ingestor, None
        ready = [p for p, (_, due) in self._hinted.items() if due <= now]
        if not ready:
            return None
        name = self._hinted[ready[0]][0]
        files = [Path(p) for p in ready if self._hinted[p][0] == name]
        for p in files:
            del self._hinted[str(p)]
        return self._active[name].ingestor, files

    def _wait_seconds(self) -> float | None:
        times = [a.next_scan for a in self._active.values()] + [d for _, d in self._hinted.values()]
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _log_once(self, message: str) -> None:
        if message not in self._logged:
            self._logged.add(message)
            log.warning("%s", message)
