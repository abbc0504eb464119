"""Keeping enabled sources ingested inside the leader sidecar.

watchdog events are hints: they say which file to look at, soon. A periodic scan of every file
(cheap: unchanged files are skipped on size and mtime, appended ones read from their offset)
catches whatever the hints missed: an overflowing inotify queue, a network drive, a watch limit.
All reading happens on one thread of its own, never on the editor's request path.

A source's folder that does not exist yet (a tool installed, or first run, after the sidecar
started) is waited for: its nearest existing ancestor is watched without its subfolders, for
entries created or moved in only (files written there wake nothing), and once the folder is
there it is watched and its source scanned at once.

Folders are watched without their subfolders (those ancestors, and a source's
`flat_watch_dirs`) only where the kernel does that: Linux's inotify. watchdog's FSEvents
(macOS) streams the whole tree and drops the deeper events in Python, so a home folder would
wake us at every change under it; its Windows observer asks for every write and access. There
the missing folders are looked for every `AWAIT_POLL_SECONDS` instead (a stat each), and the
periodic scan reads the flat folders' files.
"""

from __future__ import annotations

import contextlib
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
from dx_lsp_telemetry.sources import sqlite_ro
from dx_lsp_telemetry.sources.ingest import Ingestor
from dx_lsp_telemetry.sources.registry import SOURCES
from dx_lsp_telemetry.sources.runner import make_ingestor

log = logging.getLogger(__name__)

SCAN_INTERVAL_SECONDS = 60.0
#: re-reads of a file caught half-written before leaving it to the periodic scan
MAX_RETRIES = 5
#: how often missing folders are looked for where their ancestors cannot be watched cheaply
AWAIT_POLL_SECONDS = 5.0
#: the observers whose watch of a folder without its subfolders is the kernel's, and cheap
_FLAT_OBSERVERS = frozenset({"InotifyObserver"})


@dataclass(frozen=True)
class _Watch:
    path: str
    recursive: bool
    #: an ancestor of missing folders, watched for them to appear
    awaiting: bool = False


@dataclass
class _Plan:
    """What the active sources need watched now (see `SourceWatcher._plan`)."""

    watches: set[_Watch]
    #: per source, the folders its hints may come from
    roots: dict[str, tuple[str, ...]]
    #: missing folders, the sources waiting for each, and the ancestor it is awaited in
    awaited: dict[str, set[str]]
    ancestors: dict[str, str]
    #: the entries (children of a watched ancestor) whose appearance may bring one of them
    entries: set[str]
    #: whether folders are watched without their subfolders (else awaited ones are polled)
    flat: bool


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
        flat_watches: bool | None = None,
    ) -> None:
        self.paths = paths
        #: told (from the reading thread) when records reached the ledger
        self._on_ingested = on_ingested
        self._env = dict(env)
        self._cv = threading.Condition()
        self._active: dict[str, _Active] = {}
        self._hinted: dict[str, tuple[str, float]] = {}  # path -> (source name, due)
        self._stopped = False
        self._logged: set[str] = set()
        self._retries: dict[str, int] = {}
        #: whether folders are watched without their subfolders (None: where the observer does
        #: that in the kernel); else missing folders are looked for now and then
        self._flat_watches = flat_watches
        #: held while the watches change (by the reading thread, or `stop`)
        self._watch_lock = threading.Lock()
        self._observer: Any = None
        self._watches: dict[_Watch, Any] = {}  # what is scheduled: its ObservedWatch
        self._awaited: dict[str, set[str]] = {}
        self._awaited_entries: set[str] = set()
        self._ancestors: dict[str, str] = {}
        self._polled = False  # the awaited folders are looked for now and then
        self._resync = False  # the watches are to be brought up to date (reading thread)
        self._next_poll = 0.0
        self._next_sync = 0.0
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
            self._resync = True  # before any scan: what is written after it gets a hint
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        with self._watch_lock:
            if self._observer is not None:
                self._observer.stop()
                self._observer = None
                self._watches.clear()

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

    def appeared(self, path: str) -> None:
        """An entry was created in (or moved into) an awaited folder's ancestor (watchdog's
        thread): the watches are brought up to date if it is on the way to one."""
        with self._cv:
            if path in self._awaited_entries:
                self._resync = True
                self._cv.notify()

    # -- the watches ------------------------------------------------------------------------

    def _sync_watches(self) -> None:
        """Watch what the active sources need now, and nothing else. A source that gains a
        watched folder is scanned at once: what was written there before the watch."""
        with self._watch_lock:
            self._next_sync = time.monotonic() + SCAN_INTERVAL_SECONDS
            for _ in range(3):  # an awaited folder that appeared meanwhile: once more
                with self._cv:
                    if self._stopped:
                        return
                    wanted = [(n, a.ingestor) for n, a in self._active.items()]
                plan = self._plan(wanted)
                added = self._schedule(plan.watches)
                with self._cv:
                    for name, ingestor in wanted:
                        active = self._active.get(name)
                        if active is None or active.ingestor is not ingestor:
                            continue
                        active.roots = plan.roots[name]
                        if any(w.path in active.roots for w in added if not w.awaiting):
                            active.next_scan = 0.0
                    self._tell(plan)
                    self._awaited = plan.awaited
                    self._awaited_entries = plan.entries
                    self._polled = bool(plan.awaited) and not plan.flat
                    self._cv.notify()
                if not any(Path(d).is_dir() for d in plan.awaited):
                    return

    def _tell(self, plan: _Plan) -> None:
        """Log what began or ceased to be awaited (under the lock: `_awaited` is the last)."""
        how = "watching" if plan.flat else f"looking every {AWAIT_POLL_SECONDS:g} s in"
        for folder, ancestor in sorted(plan.ancestors.items()):
            if self._ancestors.get(folder) != ancestor:
                names = ", ".join(sorted(SOURCES[n].label for n in plan.awaited[folder]))
                log.info("%s: waiting for %s (%s %s)", names, folder, how, ancestor)
        for folder in sorted(set(self._awaited) - set(plan.awaited)):
            if Path(folder).is_dir():
                log.info("%s appeared: watching it", folder)
        self._ancestors = plan.ancestors

    def _plan(self, wanted: list[tuple[str, Ingestor]]) -> _Plan:
        cheap = self._flat_watches
        if cheap is None:
            cheap = _observer_class().__name__ in _FLAT_OBSERVERS
        plan = _Plan(set(), {}, {}, {}, set(), cheap)
        for name, ingestor in wanted:
            source, homes = ingestor.source, ingestor.homes
            mine = source.watch_dirs(homes)
            flat = source.flat_watch_dirs(homes)
            plan.roots[name] = tuple(str(d) for d in mine + flat)
            plan.watches.update(_Watch(str(d), True) for d in mine)
            if cheap:
                plan.watches.update(_Watch(str(d), False) for d in flat)
            for folder in source.awaited_dirs(homes):
                if folder.is_dir():
                    continue
                ancestor = _nearest_folder(folder)
                if ancestor is None:
                    continue
                plan.awaited.setdefault(str(folder), set()).add(name)
                plan.ancestors[str(folder)] = str(ancestor)
                plan.entries.add(str(ancestor / folder.relative_to(ancestor).parts[0]))
                if cheap:
                    plan.watches.add(_Watch(str(ancestor), False, awaiting=True))
        return plan

    def _schedule(self, watches: set[_Watch]) -> set[_Watch]:
        """Make the observer's watches `watches` (under `_watch_lock`); those it added."""
        for gone in set(self._watches) - watches:
            with contextlib.suppress(Exception):  # a folder removed since: its watch is dead
                self._observer.unschedule(self._watches.pop(gone))
        new = watches - set(self._watches)
        if not new:
            return set()
        if self._observer is None:
            observer = _observer_class()()
            observer.daemon = True
            try:
                observer.start()
            except OSError as exc:
                self._log_once(
                    f"cannot watch AI tool logs ({exc}); the periodic scan still reads them"
                )
                return set()
            self._observer = observer
        from dx_lsp_telemetry.sources.changes import APPEARED, CHANGES

        added: set[_Watch] = set()
        for watch in sorted(new, key=lambda w: (w.path, w.recursive, w.awaiting)):
            handler = _Appeared(self) if watch.awaiting else _Hint(self)
            try:
                self._watches[watch] = self._observer.schedule(
                    handler,
                    watch.path,
                    recursive=watch.recursive,
                    event_filter=APPEARED if watch.awaiting else CHANGES,
                )
            except OSError as exc:  # inotify watch or instance limits, permissions, gone
                what = "for the folders awaited in it" if watch.awaiting else ""
                self._log_once(
                    f"cannot watch {watch.path} {what}({exc}); the periodic scan still reads it"
                )
                continue
            added.add(watch)
        return added

    # -- the reading thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                work = None
                while not self._stopped and not self._resync and not self._poll_due():
                    work = self._next_work()
                    if work is not None:
                        break
                    self._cv.wait(timeout=self._wait_seconds())
                if self._stopped:
                    return
                resync, self._resync = self._resync, False
            if work is None:
                if resync or any(Path(d).is_dir() for d in list(self._awaited)):
                    self._sync_watches()
                continue
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
            if files is None and time.monotonic() >= self._next_sync:
                # as often as the scans: folders that came or went unnoticed (a workspace's
                # new chat folder, a folder deleted and made again)
                self._sync_watches()

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

    def _poll_due(self) -> bool:
        """Whether the missing folders are to be looked for now (where no ancestor is
        watched for them); the next time is set."""
        if not self._polled or time.monotonic() < self._next_poll:
            return False
        self._next_poll = time.monotonic() + AWAIT_POLL_SECONDS
        return True

    def _wait_seconds(self) -> float | None:
        times = [a.next_scan for a in self._active.values()] + [d for _, d in self._hinted.values()]
        if self._polled:
            times.append(self._next_poll)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _log_once(self, message: str) -> None:
        if message not in self._logged:
            self._logged.add(message)
            log.warning("%s", message)


def is_change(event: Any) -> bool:
    """Whether a watchdog event may mean new content in a file. Not a read (opened, closed
    unwritten), not a folder's own change; not the close of a SQLite database's write-ahead
    log, journal or shared memory: a reader (ours, read-only) opens those writable, so each
    read would hint the next, while a commit always writes them ("modified")."""
    if event.is_directory or event.event_type in ("opened", "closed_no_write"):
        return False
    if event.event_type == "closed":
        return not str(event.src_path).endswith(_SQLITE_SIDE_FILES)
    return True


_SQLITE_SIDE_FILES = (*sqlite_ro.COMPANIONS, "-shm")


def _observer_class() -> Any:
    """The platform's observer class (watchdog is imported once a watch is wanted)."""
    from watchdog.observers import Observer

    return Observer


def _nearest_folder(path: Path) -> Path | None:
    """The nearest ancestor of `path` that is a folder; None if the nearest that exists is not
    (a file where the folder should be: nothing will appear under it)."""
    for parent in path.parents:
        try:
            if parent.is_dir():
                return parent
            if parent.exists():
                return None
        except OSError:
            continue
    return None


class _Hint:
    """watchdog's handler of a watched folder: each changed file is a hint. (The observer
    calls `dispatch` only: no `FileSystemEventHandler`, whose import this module defers.)"""

    def __init__(self, watcher: SourceWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: Any) -> None:
        if is_change(event):
            self._watcher.hint(str(event.dest_path or event.src_path))


class _Appeared:
    """watchdog's handler of an ancestor of awaited folders: what was created or moved in."""

    def __init__(self, watcher: SourceWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: Any) -> None:
        self._watcher.appeared(str(event.dest_path or event.src_path))
