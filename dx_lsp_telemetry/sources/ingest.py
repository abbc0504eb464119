"""From a source's records to ledger events, exactly once, with checkpoints after the ledger.

Each record becomes an event whose id is a hash of the record's key, so a record read twice
(a crash before the checkpoint, a copied file, a rewritten JSON) is the same event; the
ledger keeps the version with the larger token total. Only counts, model names, hashed ids and
timestamps are stored: never prompts, code, paths or project names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

from filelock import FileLock, Timeout

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.settings.days import format_ts, utc_now
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.reading import FileReader

# the public face of ingestion, read by the sources, the runner and the tests
from dx_lsp_telemetry.sources.reading import IngestOptions as IngestOptions
from dx_lsp_telemetry.sources.reading import ScanStats as ScanStats
from dx_lsp_telemetry.sources.reading import event_id as event_id
from dx_lsp_telemetry.util.private import FILE_MODE, private_dir

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 60.0


class Ingestor:
    """Reads one source's files into the ledger; one at a time per source across processes."""

    def __init__(
        self,
        paths: DataPaths,
        source: Source,
        homes: list[Path],
        options: IngestOptions,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.paths = paths
        self.source = source
        self.homes = homes
        self.options = options
        self._clock = clock
        #: decided before this version's first checkpoint of the source is saved
        self._legacy = source.legacy_ids(paths.ledger_dir)
        self.checkpoints = Checkpoints(paths.sources_dir / f"{source.label}.json")
        self._lock = FileLock(paths.sources_dir / f"{source.label}.lock", mode=FILE_MODE)
        self._writer = LedgerWriter(paths.ledger_dir)

    def scan(self, *, workers: int = 1) -> ScanStats:
        """Every file of the source, from each file's checkpoint.

        `workers` > 1: a long read (an initial scan of a large history) is shared by that many
        processes, of a source whose files read independently (`Source.parallel_reads`). Only
        from a process without threads, that may start others: the CLI's `scan`.
        """
        return self._ingest(self.source.files(self.homes), full=True, workers=workers)

    def ingest_paths(self, paths: Iterable[Path]) -> ScanStats:
        """Only these files (a watcher's hints)."""
        wanted = dict.fromkeys(self.source.file_for(p) for p in paths if self.source.wants(p))
        return self._ingest(wanted, full=False)

    def _ingest(self, files: Iterable[Path], *, full: bool, workers: int = 1) -> ScanStats:
        stats = ScanStats()
        private_dir(self.paths.sources_dir, within=self.paths.home)
        try:
            self._lock.acquire(timeout=LOCK_WAIT_SECONDS)
        except Timeout:
            stats.last_error = f"{self.source.label}: another process is reading these logs"
            stats.problems.append(stats.last_error)
            stats.unread += 1
            return stats
        try:
            self.checkpoints.refresh()  # another process may have moved on
            self.source.begin(self.paths.ledger_dir, self._clock())
            seen: set[str] = set()
            shared = False
            if workers > 1 and self.source.parallel_reads:
                files = list(files)
                shared = self._read_shared(files, stats, seen, workers)
            if not shared:
                reader = self.reader()
                for path in files:
                    stats.files += 1
                    seen.add(str(path))
                    state = reader.read(path, self.checkpoints.state(path), stats)
                    if state is not None:
                        # in memory only: the checkpoint file is saved after the last batch
                        # reached the ledger
                        self.checkpoints.update(path, state)
                reader.flush()
            if full:
                self.checkpoints.forget_missing(seen)
            self._summarise(stats, full=full)
            self.checkpoints.save()
        finally:
            self._lock.release()
        return stats

    def reader(self) -> FileReader:
        """What reads this source's files into the ledger (the caller holds the lock)."""
        return FileReader(self.source, self.options, self._writer, self._clock, self._legacy)

    def _read_shared(
        self, files: list[Path], stats: ScanStats, seen: set[str], workers: int
    ) -> bool:
        """`files` read by worker processes (see `parallel`), their outcomes taken in as a
        sequential read would have them; False if too little is left to read to share."""
        from dx_lsp_telemetry.sources import parallel  # not in the sidecar

        outcomes = parallel.read_shared(
            self, files, [self.checkpoints.state(p) for p in files], workers
        )
        if outcomes is None:
            return False
        for path, (state, found) in zip(files, outcomes):
            stats.files += 1
            seen.add(str(path))
            stats.files_read += found.files_read
            stats.records += found.records
            stats.skipped += found.skipped
            stats.problems += found.problems
            stats.unread += found.unread
            stats.last_error = found.last_error or stats.last_error
            stats.retry += found.retry
            if state is not None:
                self.checkpoints.update(path, state)
        return True

    def _summarise(self, stats: ScanStats, *, full: bool) -> None:
        """What `sources` shows; saved only with something new (a quiet minute writes nothing)."""
        summary = self.checkpoints.summary
        changed = (
            self.checkpoints.dirty
            or stats.records > 0
            or stats.last_error is not None
            or (full and summary.get("files") != stats.files)
            or (full and "lastScan" not in summary)
        )
        if not changed:
            return
        summary["lastRead"] = format_ts(self._clock())
        summary["records"] = int(summary.get("records", 0)) + stats.records
        if full:
            summary["lastScan"] = summary["lastRead"]
            summary["files"] = stats.files
        if stats.last_error:
            summary["lastError"] = stats.last_error
            summary["lastErrorAt"] = summary["lastRead"]
        self.checkpoints.dirty = True


def oldest_day(today: date, retention_days: int) -> date:
    """History older than `retentionDays` is never read (its ledger files would be pruned)."""
    return today - timedelta(days=retention_days)
