"""From a source's records to ledger events, exactly once, with checkpoints after the ledger.

Each record becomes an event whose id is a hash of the record's key, so a record read twice
(a crash before the checkpoint, a copied file, a rewritten JSON) is the same event; the
ledger keeps the version with the larger token total. Only counts, model names, hashed ids and
timestamps are stored: never prompts, code, paths or project names.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from filelock import FileLock, Timeout

from dx_lsp_telemetry.days import format_ts, utc_now
from dx_lsp_telemetry.events import MAX_FUTURE, MAX_TOKENS, UsageEvent, to_decimal
from dx_lsp_telemetry.ledger import LedgerWriter
from dx_lsp_telemetry.paths import DataPaths
from dx_lsp_telemetry.sources import pricing
from dx_lsp_telemetry.sources.base import Source, SourceRecord
from dx_lsp_telemetry.sources.checkpoints import Checkpoints

log = logging.getLogger(__name__)

#: events appended per ledger write: bounds memory, whatever the size of a history
BATCH = 2000
LOCK_WAIT_SECONDS = 60.0


@dataclass
class ScanStats:
    files: int = 0
    files_read: int = 0
    records: int = 0
    skipped: int = 0
    #: shown (stderr, the log) with the file's name
    problems: list[str] = field(default_factory=list)
    #: what `sources` shows: without the file's name (it names a session), as it is stored
    last_error: str | None = None
    #: files caught half-written (a rewrite in progress): to be read again shortly
    retry: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "filesRead": self.files_read,
            "records": self.records,
            "skipped": self.skipped,
            "problems": self.problems[:20],
        }


@dataclass(frozen=True)
class IngestOptions:
    tool: str
    estimate: bool
    #: records before this day are not ingested (retention, or `scan --since`)
    oldest: date | None = None
    #: `scan --since`: records before it are left for a later, wider read (not marked read)
    since: date | None = None


def event_id(source: Source, key: str) -> str:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{source.label}:{digest}"


def to_event(source: Source, record: SourceRecord, options: IngestOptions) -> UsageEvent:
    spend = Decimal(0)
    metrics: dict[str, Decimal] = {}
    if record.cost_usd is not None:
        spend = to_decimal(float(to_decimal(record.cost_usd) * 100))
    elif options.estimate:
        estimate = pricing.estimate_cents(
            record.model,
            record.timestamp,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cache_write_tokens=record.cache_write_tokens,
            cache_read_tokens=record.cache_read_tokens,
            cache_write_1h_tokens=record.cache_write_1h_tokens,
        )
        if estimate is not None and estimate > 0:
            # the float text keeps the ledger's exact-decimal rule (shortest repr)
            spend = to_decimal(float(estimate))
            metrics["spend_estimated_cents"] = spend
    return UsageEvent(
        event_id=event_id(source, record.key),
        timestamp=record.timestamp,
        tool=options.tool,
        model=record.model,
        source=source.label,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_write_tokens=record.cache_write_tokens,
        cache_read_tokens=record.cache_read_tokens,
        spend_cents=spend,
        metrics=metrics,
    )


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
        self.checkpoints = Checkpoints(paths.home / "sources" / f"{source.label}.json")
        self._lock = FileLock(paths.home / "sources" / f"{source.label}.lock")
        self._writer = LedgerWriter(paths.ledger_dir)

    def scan(self) -> ScanStats:
        """Every file of the source, from each file's checkpoint."""
        return self._ingest(self.source.files(self.homes), full=True)

    def ingest_paths(self, paths: Iterable[Path]) -> ScanStats:
        """Only these files (a watcher's hints)."""
        return self._ingest((p for p in paths if self.source.wants(p)), full=False)

    def _ingest(self, files: Iterable[Path], *, full: bool) -> ScanStats:
        stats = ScanStats()
        self.paths.home.joinpath("sources").mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=LOCK_WAIT_SECONDS)
        except Timeout:
            stats.last_error = f"{self.source.label}: another process is reading these logs"
            stats.problems.append(stats.last_error)
            return stats
        try:
            self.checkpoints.refresh()  # another process may have moved on
            seen: set[str] = set()
            pending: list[UsageEvent] = []
            for path in files:
                stats.files += 1
                seen.add(str(path))
                self._read_file(path, stats, pending)
                if len(pending) >= BATCH:
                    self._flush(pending)
            self._flush(pending)
            if full:
                self.checkpoints.forget_missing(seen)
            self._summarise(stats, full=full)
            self.checkpoints.save()
        finally:
            self._lock.release()
        return stats

    def _read_file(self, path: Path, stats: ScanStats, pending: list[UsageEvent]) -> None:
        state = self.checkpoints.state(path)
        try:
            result = self.source.read(path, state)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                _problem(stats, path, str(exc.strerror or exc))
            return
        if result.problem:
            _problem(stats, path, result.problem)
        if result.retry:
            stats.retry.append(path)  # half-written: read again shortly, checkpoint untouched
            return
        if result.records:
            stats.files_read += 1
        now = self._clock()
        since = self.options.since
        narrowed = False
        # copies of a record within the file (streaming snapshots): only the one the ledger
        # would keep is written: the larger total, on a tie the later (UTC date, position)
        winners: dict[str, tuple[tuple[int, date, int], SourceRecord]] = {}
        for position, record in enumerate(result.records):
            if not self._acceptable(record, now):
                stats.skipped += 1
                continue
            if since is not None and record.timestamp.date() < since:
                stats.skipped += 1
                narrowed = True
                continue
            stats.records += 1
            rank = (record.token_total, record.timestamp.astimezone(timezone.utc).date(), position)
            old = winners.get(record.key)
            if old is None or rank > old[0]:
                winners[record.key] = (rank, record)
        pending.extend(to_event(self.source, r, self.options) for _, r in winners.values())
        if narrowed:
            return  # this file's older records stay unread: a scan without --since counts them
        # in memory only: the checkpoint file is saved after the last batch reached the ledger
        self.checkpoints.update(path, result.state)

    def _acceptable(self, record: SourceRecord, now: datetime) -> bool:
        if not (
            0 <= record.input_tokens <= MAX_TOKENS
            and 0 <= record.output_tokens <= MAX_TOKENS
            and 0 <= record.cache_write_tokens <= MAX_TOKENS
            and 0 <= record.cache_read_tokens <= MAX_TOKENS
        ) or (record.token_total == 0):
            return False
        if record.timestamp > now + MAX_FUTURE:
            return False
        oldest = self.options.oldest
        return oldest is None or record.timestamp.date() >= oldest

    def _flush(self, pending: list[UsageEvent]) -> None:
        if pending:
            self._writer.append_events(pending)
            pending.clear()

    def _summarise(self, stats: ScanStats, *, full: bool) -> None:
        summary = self.checkpoints.summary
        summary["lastRead"] = format_ts(self._clock())
        summary["records"] = int(summary.get("records", 0)) + stats.records
        if full:
            summary["lastScan"] = summary["lastRead"]
            summary["files"] = stats.files
        if stats.last_error:
            summary["lastError"] = stats.last_error
            summary["lastErrorAt"] = summary["lastRead"]
        self.checkpoints.dirty = True


def _problem(stats: ScanStats, path: Path, text: str) -> None:
    stats.problems.append(f"{path.name}: {text}")
    stats.last_error = f"a log file: {text}"


def oldest_day(today: date, retention_days: int) -> date:
    """History older than `retentionDays` is never read (its ledger files would be pruned)."""
    return today - timedelta(days=retention_days)
