"""What every source produces, and the contract a source module fulfils."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

#: A file's reading state, kept in the checkpoint between runs (JSON-able values only).
FileState = dict[str, Any]
#: of these event ids, those the ledger holds
HeldIds = Callable[[list[str]], set[str]]


class SourceRecord(NamedTuple):
    """One usage record of a tool, with the disjoint token buckets of DX.

    `key` identifies the record in the tool's own terms (e.g. message id + request id); the
    same record read again, from any file, has the same key. It is hashed before it is stored.
    Immutable; a named tuple rather than a frozen dataclass: made about 5 times faster, and an
    initial scan makes one per usage line (100k per 200 MB of Claude Code history).
    """

    key: str
    timestamp: datetime
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    #: of `cache_write_tokens`, those cached for an hour (priced above the 5-minute ones)
    cache_write_1h_tokens: int = 0
    #: the key an earlier version gave this record: kept where the ledger already holds it
    legacy_key: str | None = None

    @property
    def token_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )


@dataclass
class ReadResult:
    records: list[SourceRecord]
    state: FileState
    #: the file could not be read whole now (a rewrite in progress): try again soon
    retry: bool = False
    problem: str | None = None


class Source(ABC):
    #: the settings key (`sources.<name>`)
    name: ClassVar[str]
    #: the source's own name: the default DX tool, the `source` field, the CLI's `--source`
    label: ClassVar[str]

    @abstractmethod
    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        """The tool's home folders: the configured one, else the tool's default locations."""

    #: the folders of each home that hold its logs (watched recursively once they exist);
    #: none: the homes themselves
    watch_subdirs: ClassVar[tuple[str, ...]] = ()

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """The folders `watch_dirs` and `flat_watch_dirs` give once they exist, existing or not:
        one that is missing (the tool not installed or run yet) is waited for, its nearest
        existing ancestor watched without subfolders until it appears."""
        if not self.watch_subdirs:
            return list(homes)
        return [h / d for h in homes for d in self.watch_subdirs]

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """Existing folders to watch recursively (hints only)."""
        return [d for d in self.awaited_dirs(homes) if d.is_dir()]

    @abstractmethod
    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        """Every file that may hold usage, in a stable order."""

    @abstractmethod
    def wants(self, path: Path) -> bool:
        """Whether a changed path is one of this source's files."""

    @abstractmethod
    def read(self, path: Path, state: FileState) -> ReadResult:
        """The records new since `state` (empty for a file not read before)."""

    def begin(self, ledger_dir: Path, now: datetime) -> None:  # noqa: B027 (an optional hook)
        """A scan of this source starts (under its lock): a source whose records depend on what
        the ledger holds (running totals) takes its bearings. Nothing for most."""

    def flat_watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """Existing folders to watch without their subfolders: where a single log file lives
        in a big folder (a home), watching it whole would cost too much. None for most."""
        return []

    def file_for(self, path: Path) -> Path:
        """The file a changed path stands for (a database's `-wal` file: the database)."""
        return path

    def legacy_ids(self, ledger_dir: Path) -> HeldIds | None:
        """Which old event ids the ledger holds, where records carry a `legacy_key` and the
        ledger may hold events of those keys; None where it cannot."""
        return None

    #: rewritten files are re-read only after this many seconds of quiet
    debounce_seconds: ClassVar[float] = 0.2
    #: whether files may be read by separate processes (`scan` of the CLI): each file's records
    #: depend on nothing read from another file by the same instance
    parallel_reads: ClassVar[bool] = False


def files_under(roots: Iterable[Path], suffix: str) -> Iterator[Path]:
    """`walk_files` of each root, a root reached twice (a symlinked home) read once."""
    seen: set[str] = set()
    for root in roots:
        real = os.path.realpath(root)
        if real not in seen:
            seen.add(real)
            yield from walk_files(root, suffix)


def walk_files(root: Path, suffix: str) -> Iterator[Path]:
    """Regular files under `root` ending in `suffix`, sorted, not following symlinks."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                yield from walk_files(entry, suffix)
            elif entry.name.endswith(suffix) and entry.is_file():
                yield entry
        except OSError:
            continue
