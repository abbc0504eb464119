"""A source's files read into ledger lines: each record an event whose id hashes its key.

The work of a scan without its lock and checkpoints, so a scan's worker processes
(`parallel`) share it with `ingest`, which holds those."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from hashlib import blake2b
from pathlib import Path

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.record.events import MAX_FUTURE, MAX_TOKENS, UsageEvent, to_decimal
from dx_lsp_telemetry.settings.days import utc_now
from dx_lsp_telemetry.sources import pricing
from dx_lsp_telemetry.sources.base import FileState, HeldIds, Source, SourceRecord

#: events appended per ledger write: bounds memory, whatever the size of a history
BATCH = 2000


@dataclass
class ScanStats:
    files: int = 0
    files_read: int = 0
    records: int = 0
    skipped: int = 0
    #: shown (stderr, the log) with the file's name
    problems: list[str] = field(default_factory=list)
    #: files that could not be read at all (an OSError), or 1 for logs another process held:
    #: a failed read (the CLI's `scan` exits 1), not the skipped lines of a readable file
    unread: int = 0
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
    digest = blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
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


class LedgerLines:
    """Records straight to their ledger lines: the text `LedgerWriter.append_lines` writes for
    `to_event(...).to_ledger()` (compact JSON, ensure_ascii=False, the same keys in the same
    order), without `recorded_at` (stamped when written), and the UTC date of the line's file.
    No event objects and no JSON encoder per record: most of the work of an initial scan.
    """

    def __init__(self, source: Source, options: IngestOptions) -> None:
        self.source = source
        self.options = options
        label = source.label
        self._id_prefix = _json_str(f"{label}:")[:-1]  # `"claude-code:`
        self._tool = _json_str(options.tool)
        self._source = _json_str(label)
        #: model name -> `,"model":"…"` (few distinct names; bounded all the same)
        self._models: dict[str, str] = {}

    def __call__(self, record: SourceRecord) -> tuple[date, str]:
        ts = record.timestamp
        utc = ts if ts.tzinfo is timezone.utc else ts.astimezone(timezone.utc)
        i, o, w, r = (
            record.input_tokens,
            record.output_tokens,
            record.cache_write_tokens,
            record.cache_read_tokens,
        )
        if record.cost_usd is not None or not (
            type(i) is int and type(o) is int and type(w) is int and type(r) is int
        ):
            return utc.date(), _line_text(to_event(self.source, record, self.options))
        spend = "0"
        metrics = ""
        if self.options.estimate:
            estimate = pricing.estimate_cents(
                record.model,
                ts,
                input_tokens=i,
                output_tokens=o,
                cache_write_tokens=w,
                cache_read_tokens=r,
                cache_write_1h_tokens=record.cache_write_1h_tokens,
            )
            if estimate is not None and estimate > 0:
                cents = float(estimate)
                if not math.isfinite(cents):
                    return utc.date(), _line_text(to_event(self.source, record, self.options))
                # decimal_to_json(to_decimal(cents)): an integral value as an int
                spend = str(int(cents)) if cents.is_integer() else repr(cents)
                metrics = f',"metrics":{{"spend_estimated_cents":{spend}}}'
        model = record.model
        if model is None:
            model_text = ""
        else:
            model_text = self._models.get(model, "")
            if not model_text:
                if len(self._models) >= 1024:
                    self._models.clear()
                model_text = self._models[model] = f',"model":{_json_str(model)}'
        digest = blake2b(record.key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        stamp = utc.isoformat().replace("+00:00", "Z")  # format_ts
        return utc.date(), (
            f'{{"type":"usage","event_id":{self._id_prefix}{digest}","timestamp":"{stamp}",'
            f'"tool":{self._tool}{model_text},"source":{self._source},"input_tokens":{i},'
            f'"output_tokens":{o},"cache_write_tokens":{w},"cache_read_tokens":{r},'
            f'"spend_cents":{spend}{metrics}}}'
        )


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _line_text(event: UsageEvent) -> str:
    """What `LedgerWriter.append_lines` writes for the event, before `recorded_at`."""
    return json.dumps(event.to_ledger(), ensure_ascii=False, separators=(",", ":"))


_AUTO = object()


class FileReader:
    """Reads files of one source into ledger lines, appended in batches: the work of a scan
    without its lock and checkpoints (the caller's), so that worker processes can share it."""

    def __init__(
        self,
        source: Source,
        options: IngestOptions,
        writer: LedgerWriter,
        clock: Callable[[], datetime] = utc_now,
        legacy: HeldIds | object | None = _AUTO,
    ) -> None:
        self.source = source
        self.options = options
        self.writer = writer
        self.clock = clock
        #: where records carry a key of an earlier version: which of those the ledger holds
        self.legacy: HeldIds | None = (
            source.legacy_ids(writer.ledger_dir) if legacy is _AUTO else legacy  # type: ignore[assignment]
        )
        self.lines = LedgerLines(source, options)
        #: (UTC date of the ledger file, line text) not yet appended
        self.pending: list[tuple[date, str]] = []

    def read(self, path: Path, state: FileState, stats: ScanStats) -> FileState | None:
        """Read `path` from `state`, its events into `pending` (appended whenever a batch is
        full); the file's new state, or None if its checkpoint must stay as it was."""
        try:
            result = self.source.read(path, state)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):  # gone since it was listed: no loss
                _problem(stats, path, str(exc.strerror or exc))
                stats.unread += 1
            return None
        if result.problem:
            _problem(stats, path, result.problem)
        if result.retry:
            stats.retry.append(path)  # half-written: read again shortly, checkpoint untouched
            return None
        records = result.records
        if records:
            stats.files_read += 1
        now = self.clock()
        latest = now + MAX_FUTURE
        since = self.options.since
        oldest = self.options.oldest
        narrowed = False
        accepted = skipped = 0
        # copies of a record within the file (streaming snapshots): only the one the ledger
        # would keep is written: the larger total, on a tie the later (UTC date, position)
        winners: dict[str, tuple[tuple[int, date, int], SourceRecord]] = {}
        for position, record in enumerate(records):
            i, o, w, r = (
                record.input_tokens,
                record.output_tokens,
                record.cache_write_tokens,
                record.cache_read_tokens,
            )
            total = i + o + w + r
            ts = record.timestamp
            if (
                not (
                    0 <= i <= MAX_TOKENS
                    and 0 <= o <= MAX_TOKENS
                    and 0 <= w <= MAX_TOKENS
                    and 0 <= r <= MAX_TOKENS
                )
                or total == 0
                or ts > latest
            ):
                skipped += 1
                continue
            day = ts.date()
            if oldest is not None and day < oldest:
                skipped += 1
                continue
            if since is not None and day < since:
                skipped += 1
                narrowed = True
                continue
            accepted += 1
            utc_day = day if ts.tzinfo is timezone.utc else ts.astimezone(timezone.utc).date()
            rank = (total, utc_day, position)
            old = winners.get(record.key)
            if old is None or rank > old[0]:
                winners[record.key] = (rank, record)
        stats.records += accepted
        stats.skipped += skipped
        if winners and self.legacy is not None:
            self._keep_counted_keys(winners)
        if winners:
            encode = self.lines
            self.pending.extend([encode(record) for _, record in winners.values()])
            if len(self.pending) >= BATCH:
                self.flush()
        if narrowed:
            return None  # this file's older records stay unread: a scan without --since counts them
        return result.state

    def _keep_counted_keys(
        self, winners: dict[str, tuple[tuple[int, date, int], SourceRecord]]
    ) -> None:
        """A record an earlier version counted under its old key keeps that key (see
        `claude_keys`): otherwise a re-read after the upgrade would count it again."""
        assert self.legacy is not None
        old = {
            event_id(self.source, r.legacy_key): (key, r.legacy_key)
            for key, (_, r) in winners.items()
            if r.legacy_key is not None
        }
        for held in self.legacy(list(old)) if old else ():
            key, legacy_key = old[held]
            rank, record = winners[key]
            winners[key] = (rank, record._replace(key=legacy_key))

    def flush(self) -> None:
        if self.pending:
            self.writer.append_encoded(self.pending)
            self.pending.clear()


def _problem(stats: ScanStats, path: Path, text: str) -> None:
    stats.problems.append(f"{path.name}: {text}")
    stats.last_error = f"a log file: {text}"
