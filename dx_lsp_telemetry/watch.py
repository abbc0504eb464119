"""File-system hints: a watchdog observer on a few directories (events only say "look again")."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

#: every kind of event but a file opened or closed unwritten (reads: never a change), so that
#: readers of the watched files (status refreshes, other windows, the CLI) cost no event at all
CHANGES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirModifiedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class _Hint(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[str], None], ignore: tuple[str, ...]) -> None:
        self._on_change = on_change
        self._ignore = ignore

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        path = str(event.dest_path or event.src_path)
        if path.endswith(self._ignore):
            return
        self._on_change(path)


class DirectoryWatch:
    """Calls `on_change(path)` from the observer thread when something under `dirs` changes."""

    def __init__(
        self,
        dirs: Iterable[Path],
        on_change: Callable[[str], None],
        ignore_suffixes: tuple[str, ...] = (".lock", ".tmp"),
    ) -> None:
        self._dirs = list(dirs)
        self._handler = _Hint(on_change, ignore_suffixes)
        self._observer: Any = None

    def start(self) -> list[str]:
        """Start watching; returns the problems (inotify limits, missing folders) it met."""
        problems: list[str] = []
        observer = Observer()
        observer.daemon = True
        for d in self._dirs:
            try:
                observer.schedule(self._handler, str(d), recursive=False, event_filter=CHANGES)
            except OSError as exc:
                problems.append(f"cannot watch {d}: {exc}")
        try:
            observer.start()
        except OSError as exc:
            problems.append(f"cannot start watching files: {exc}")
            return problems
        self._observer = observer
        return problems

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer = None  # daemon thread: never joined, exit is not delayed
