"""Running sources once (the CLI's `scan`) and describing them (`sources`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.settings.days import day_of, utc_now
from dx_lsp_telemetry.settings.settings import Settings
from dx_lsp_telemetry.sources import pricing
from dx_lsp_telemetry.sources.base import Source
from dx_lsp_telemetry.sources.checkpoints import Checkpoints
from dx_lsp_telemetry.sources.ingest import IngestOptions, Ingestor, ScanStats, oldest_day
from dx_lsp_telemetry.sources.registry import SOURCES, homes_for
from dx_lsp_telemetry.util.shown import plural


def make_ingestor(
    paths: DataPaths,
    source: Source,
    settings: Settings,
    env: Mapping[str, str],
    *,
    path: str = "",
    since: date | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Ingestor:
    today = day_of(clock(), "utc")
    options = IngestOptions(
        tool=settings.sources[source.name].tool,
        estimate=settings.spend_estimate,
        oldest=oldest_day(today, settings.retention_days),
        since=since,
    )
    return Ingestor(paths, source, homes_for(source, settings, env, path), options, clock=clock)


def scan(
    paths: DataPaths,
    settings: Settings,
    env: Mapping[str, str],
    names: list[str],
    *,
    path: str = "",
    since: date | None = None,
    workers: int = 1,
) -> dict[str, ScanStats]:
    """Ingest each named source once; a second scan adds nothing. `workers` > 1: a long read
    may be shared by that many processes (`Ingestor.scan`: never from the sidecar)."""
    paths.ensure()
    results: dict[str, ScanStats] = {}
    for name in names:
        source = SOURCES[name]()
        results[source.label] = make_ingestor(
            paths, source, settings, env, path=path, since=since
        ).scan(workers=workers)
    return results


def describe(paths: DataPaths, settings: Settings, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each source: enabled or not, where it looks, what it found, its last error."""
    rows = []
    for name, cls in SOURCES.items():
        source = cls()
        homes = homes_for(source, settings, env)
        summary = Checkpoints(paths.home / "sources" / f"{source.label}.json").summary
        files = sum(1 for _ in source.files(homes))
        rows.append(
            {
                "name": name,
                "label": source.label,
                "enabled": settings.sources[name].enabled,
                "tool": settings.sources[name].tool,
                "looksIn": [str(h) for h in homes],
                "watching": [str(d) for d in source.watch_dirs(homes)],
                "files": files,
                "records": int(summary.get("records", 0)),
                "lastScan": summary.get("lastScan"),
                "lastError": summary.get("lastError"),
                "spendEstimates": settings.spend_estimate and pricing.available(),
            }
        )
    return rows


def sources_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        state = "enabled" if row["enabled"] else "off"
        lines.append(f"{row['label']} ({row['name']}): {state}, pushed as {row['tool']!r}")
        for home, found in ((h, Path(h).exists()) for h in row["looksIn"]):
            lines.append(f"  looks in {home}" + ("" if found else " (not found)"))
        lines.append(
            f"  found {plural(row['files'], 'log file')}; "
            f"{plural(row['records'], 'record')} read so far"
            + (f"; last scan {row['lastScan']}" if row["lastScan"] else "")
        )
        if row["lastError"]:
            lines.append(f"  last error: {row['lastError']}")
    return "\n".join(lines)
