"""What the running-total sources (Droid, Goose, Zed) share: the totals' bookkeeping, and for
those whose totals sit in one SQLite database per home, where that database is."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from dx_lsp_telemetry.sources import sqlite_ro
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.ingest import event_id
from dx_lsp_telemetry.sources.running import RunningTotals


class RunningTotalSource(Source):
    def __init__(self) -> None:
        self._totals = RunningTotals(lambda key: event_id(self, key), self.label)

    def begin(self, ledger_dir: Path, now: datetime) -> None:
        self._totals.begin(ledger_dir, now)


class RunningTotalDatabase(RunningTotalSource):
    #: the database's file name in each home folder
    db_name: ClassVar[str]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[Path] = set()
        for home in homes:
            path = home / self.db_name
            if path not in seen and path.is_file():
                seen.add(path)
                yield path

    def wants(self, path: Path) -> bool:
        return path.name == self.db_name or sqlite_ro.is_companion(path, self.db_name)

    def file_for(self, path: Path) -> Path:
        return path.with_name(self.db_name)
