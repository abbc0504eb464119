"""What the ledger holds, read the plain way: every file parsed whole and the winner of each
event_id chosen in memory (the larger token total; on a tie the one written later). The index
must always agree with this; tests compare the two."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.record.events import UsageEvent, from_ledger
from dx_lsp_telemetry.record.summary import Totals
from dx_lsp_telemetry.settings.days import parse_ts


@dataclass(frozen=True)
class Version:
    event: UsageEvent
    recorded_at: float
    file_date: date
    offset: int

    @property
    def rank(self) -> tuple[int, float, date, int]:
        return (self.event.token_total, self.recorded_at, self.file_date, self.offset)


def winners(ledger_dir: Path) -> list[UsageEvent]:
    """Each event_id's winning version, from every ledger file; bad lines are skipped."""
    best: dict[str, Version] = {}
    for path in sorted(ledger_dir.glob("*.jsonl")):
        data = path.read_bytes()
        offset = 0
        for raw in data.split(b"\n")[:-1]:  # the part after the last newline is unfinished
            here, offset = offset, offset + len(raw) + 1
            version = _parse(raw, date.fromisoformat(path.stem), here)
            if version is None:
                continue
            held = best.get(version.event.event_id)
            if held is None or version.rank > held.rank:
                best[version.event.event_id] = version
    return [v.event for v in best.values()]


def _parse(raw: bytes, file_date: date, offset: int) -> Version | None:
    try:
        line: Any = json.loads(raw)
        if not isinstance(line, dict) or line.get("type") != "usage":
            return None
        stamp = line.get("recorded_at")
        when = parse_ts(stamp).timestamp() if isinstance(stamp, str) and stamp else 0.0
        return Version(from_ledger(line), when, file_date, offset)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def totals_by_day(ledger_dir: Path) -> dict[tuple[str, str], Totals]:
    """Per (UTC date, tool), the totals of the winners."""
    result: dict[tuple[str, str], Totals] = {}
    for event in winners(ledger_dir):
        key = (event.timestamp.date().isoformat(), event.tool)
        result.setdefault(key, Totals()).add(event)
    return result
