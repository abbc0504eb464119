"""Token counts, costs, model names and times as the JSON-writing tools store them, checked."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

MAX_MODEL = 200
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def count(value: Any) -> int:
    """A token count: absent is 0; an integral float is its int; anything else is refused."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return int(value)


def cost(value: Any) -> float | None:
    """A cost in USD, or None where there is none (or it is not a finite non-negative number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    usd = float(value)
    return usd if math.isfinite(usd) and usd >= 0 else None


def model(value: Any) -> str | None:
    return value.strip()[:MAX_MODEL] if isinstance(value, str) and value.strip() else None


def from_ms(value: Any) -> datetime:
    """A JavaScript time (ms since the epoch) as aware UTC; a non-number is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a time in ms: {value!r}")
    return EPOCH + timedelta(milliseconds=value)
