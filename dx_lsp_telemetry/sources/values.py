"""The values the newer sources read from tools' files, checked: counts, costs, times, names."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from dx_lsp_telemetry.settings.days import parse_ts

MAX_MODEL = 200


def token_count(value: Any) -> int:
    """A token count: absent is 0; a negative, fractional or non-number one is refused."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {str(value)[:40]!r}")
    return value


def cost_usd(value: Any) -> float | None:
    """A cost in USD, or None for anything that is not a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    cost = float(value)
    return cost if math.isfinite(cost) and 0 <= cost < 1e9 else None


def tool_time(value: Any) -> datetime | None:
    """RFC 3339 text, or SQLite's `datetime('now')` (UTC without a zone), as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    try:
        return parse_ts(text)
    except ValueError:
        pass
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def model_name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_MODEL]
    return None
