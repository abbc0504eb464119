"""Pruning: ledger and outbox files older than `retentionDays` go, once their day is final.

A day older than the backfill window can no longer be pushed, so its state is final; the
cut-off therefore never falls inside the window, whatever `retentionDays` says.
"""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta

from dx_lsp_telemetry.ledger.ledger import LedgerWriter, ledger_path, list_ledger_dates
from dx_lsp_telemetry.ledger.ledger_index import LedgerIndex
from dx_lsp_telemetry.ledger.paths import DataPaths

log = logging.getLogger(__name__)


def prune(
    paths: DataPaths,
    writer: LedgerWriter,
    index: LedgerIndex,
    today: date,
    retention_days: int,
    backfill_days: int,
) -> list[str]:
    """Delete what is past retention; returns the names removed. A ledger file leaves the
    index first, under the append lock, so the index never counts a file that is gone."""
    keep_days = max(retention_days, backfill_days + 2)
    cutoff = today - timedelta(days=keep_days)
    removed: list[str] = []
    old = [d for d in list_ledger_dates(paths.ledger_dir) if d < cutoff]
    if old:
        rebuild = False
        with writer.locked():
            for d in old:
                rebuild = index.forget_file(d) or rebuild
                _remove(ledger_path(paths.ledger_dir, d), removed)
            if rebuild:
                index.rebuild("an event had versions in a pruned ledger file and another")
    try:
        names = os.listdir(paths.outbox_dir)
    except FileNotFoundError:
        names = []
    for name in names:
        try:
            day = date.fromisoformat(name.split("__", 1)[0])
        except ValueError:
            continue
        if day < cutoff:
            _remove(paths.outbox_dir / name, removed)
    if removed:
        log.info("retention: removed %d files older than %s", len(removed), cutoff)
    return removed


def _remove(path: str | os.PathLike[str], removed: list[str]) -> None:
    try:
        os.remove(path)
        removed.append(os.fspath(path))
    except OSError as exc:
        log.warning("retention: cannot remove %s: %s", path, exc.strerror)
