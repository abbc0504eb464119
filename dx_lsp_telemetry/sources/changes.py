"""The kinds of file-system events that mean a file may hold something new (watchdog)."""

from __future__ import annotations

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
)

#: every kind of event but a file opened or closed unwritten (reads: never a change), so that
#: readers of the watched files cost no event at all
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

#: what an ancestor of a missing folder is watched for: an entry created or moved in (a folder,
#: or a symlink to one). Its kernel mask (inotify: create and move) leaves out writes to files
APPEARED: list[type[FileSystemEvent]] = [
    DirCreatedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileMovedEvent,
]
