"""A usage event: validation of what callers send, and its ledger form.

Numbers that may be fractional are kept as `Decimal` of their shortest JSON text, so sums are
exact and independent of order.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from dx_lsp_telemetry.settings.days import (
    DayBoundary,
    day_of,
    format_ts,
    parse_ts,
    utc_dates_overlapping,
)
from dx_lsp_telemetry.settings.problems import Namer, Term, event_field, problem, setting
from dx_lsp_telemetry.util.shown import is_unicode, show

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
MAX_TOKENS = 10**12
#: cents and metric values: far above any real day, far below where float sums lose meaning
MAX_AMOUNT = 10**12
MAX_FUTURE = timedelta(minutes=5)
MAX_METRICS = 32
#: how much of a field's name an error quotes (an unknown key may be MBs long)
MAX_NAME = 100
_METRIC_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ALLOWED = {
    "tool",
    "timestamp",
    "event_id",
    "model",
    "source",
    *TOKEN_FIELDS,
    "spend_cents",
    "cost_usd",
    "metrics",
}


class EventError(ValueError):
    """A bad event; the message names the field and the value (`NOT_SHOWN`: no value to
    show). `str()` is in the LSP interface's words; `render` in a front end's."""

    def __init__(self, field_name: str, value: Any, expected: str | tuple[str | Term, ...]) -> None:
        self.field = field_name or '""'
        name = self.field if len(self.field) <= MAX_NAME else self.field[: MAX_NAME - 3] + "..."
        said = (expected,) if isinstance(expected, str) else expected
        got = () if value is NOT_SHOWN else (f", got {show_value(value)}",)
        self.problem = problem(event_field(name), ": ", *said, *got)
        super().__init__(str(self.problem))

    def render(self, namer: Namer) -> str:
        return self.problem.render(namer)


#: an `EventError` whose message has no value to show (what is wrong is a combination)
NOT_SHOWN = object()


def show_value(value: Any) -> str:
    """The value as JSON-like text of at most 100 characters, whatever its size or depth."""
    return show(value, 100)


@dataclass  # not frozen, yet never changed: a frozen one costs 3 us more to make (per line indexed)
class UsageEvent:
    event_id: str
    timestamp: datetime
    tool: str
    model: str | None = None
    source: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    spend_cents: Decimal = Decimal(0)
    metrics: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def token_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )

    def to_ledger(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "type": "usage",
            "event_id": self.event_id,
            "timestamp": format_ts(self.timestamp),
            "tool": self.tool,
        }
        if self.model is not None:
            line["model"] = self.model
        if self.source is not None:
            line["source"] = self.source
        for name in TOKEN_FIELDS:
            line[name] = getattr(self, name)
        line["spend_cents"] = decimal_to_json(self.spend_cents)
        if self.metrics:
            line["metrics"] = {k: decimal_to_json(v) for k, v in self.metrics.items()}
        return line


def decimal_to_json(value: Decimal) -> int | float:
    """An integral value as int; otherwise the float whose shortest text is this value."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def to_decimal(value: int | float) -> Decimal:
    """The exact decimal a JSON number denotes (a float by its shortest round-trip text)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


@dataclass(frozen=True)
class EventRules:
    """What `validate_event` needs to know of the settings and the clock."""

    default_tool: str
    now: datetime
    day_boundary: DayBoundary
    backfill_days: int

    @property
    def oldest_day(self) -> date:
        return day_of(self.now, self.day_boundary) - timedelta(days=self.backfill_days)

    @property
    def window_files(self) -> list[date]:
        """The UTC ledger files of the accepted days: where an earlier version of an event is."""
        today = day_of(self.now, self.day_boundary)
        return list(_window_files(self.oldest_day, today, self.day_boundary))


@lru_cache(maxsize=8)
def _window_files(first: date, last: date, boundary: DayBoundary) -> tuple[date, ...]:
    # asked for every recorded event; the answer changes once a day
    return tuple(utc_dates_overlapping(first, last, boundary))


def validate_event(raw: Any, rules: EventRules) -> UsageEvent:
    """The event as sent by `dxTelemetry/recordUsage`, `record --json` or a source."""
    if not isinstance(raw, Mapping):
        raise EventError("event", raw, "expected one usage event object")
    for key in sorted(map(str, raw)):
        if key not in _ALLOWED:
            raise EventError(
                key, raw[key], "unknown field (allowed: " + ", ".join(sorted(_ALLOWED)) + ")"
            )

    tool = raw.get("tool")
    if tool is None:
        tool = rules.default_tool
        if not tool:
            raise EventError("tool", NOT_SHOWN, ("not given, and ", setting("tool"), " is not set"))
    elif not isinstance(tool, str) or not 1 <= len(tool.strip()) <= 100:
        raise EventError("tool", tool, "expected a string of 1 to 100 characters")
    _unicode(tool, "tool")
    tool = tool.strip()

    timestamp = _timestamp(raw.get("timestamp"), rules)

    event_id = raw.get("event_id")
    if event_id is None:
        event_id = str(uuid.uuid4())
    elif not isinstance(event_id, str) or not 1 <= len(event_id) <= 200:
        raise EventError("event_id", event_id, "expected a string of 1 to 200 characters")
    _unicode(event_id, "event_id")

    model = _optional_string(raw, "model", 200)
    source = _optional_string(raw, "source", 100)
    tokens = {name: _token_count(raw.get(name), name) for name in TOKEN_FIELDS}
    spend = _spend(raw)
    metrics = _metrics(raw.get("metrics"))
    return UsageEvent(
        event_id=event_id,
        timestamp=timestamp,
        tool=tool,
        model=model,
        source=source,
        spend_cents=spend,
        metrics=metrics,
        **tokens,
    )


def _timestamp(value: Any, rules: EventRules) -> datetime:
    if value is None:
        return rules.now
    if not isinstance(value, str):
        raise EventError(
            "timestamp", value, "expected an RFC 3339 string like 2026-01-15T09:30:00Z"
        )
    try:
        ts = parse_ts(value)
    except ValueError as exc:
        raise EventError("timestamp", value, str(exc)) from None
    if ts > rules.now + MAX_FUTURE:
        raise EventError("timestamp", value, "is more than 5 minutes in the future")
    if day_of(ts, rules.day_boundary) < rules.oldest_day:
        raise EventError(
            "timestamp",
            value,
            f"is older than the backfill window (oldest day accepted: {rules.oldest_day}, "
            f"dayBoundary {rules.day_boundary})",
        )
    return ts


def _optional_string(raw: Mapping[str, Any], name: str, max_len: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise EventError(name, value, f"expected a string of 1 to {max_len} characters")
    return _unicode(value, name)


def _unicode(value: str, name: str) -> str:
    """A lone surrogate (`"\\udc80"` in JSON) is no text: the ledger's UTF-8 cannot hold it."""
    if not is_unicode(value):
        raise EventError(name, value, "expected Unicode text, not a lone surrogate")
    return value


def _token_count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_TOKENS:
            return int(value)  # JSON has one number type: 12.0 is the integer 12
        raise EventError(name, value, "expected an integer from 0 to 10^12")
    if not 0 <= value <= MAX_TOKENS:
        raise EventError(name, value, "expected an integer from 0 to 10^12")
    return value


def _non_negative_number(value: Any, name: str, high: float = MAX_AMOUNT) -> Decimal:
    expected = f"expected a number from 0 to {high:.0e}".replace("e+", "e")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError(name, value, expected)
    if isinstance(value, float) and not math.isfinite(value):
        raise EventError(name, value, expected)
    if not 0 <= value <= high:
        raise EventError(name, value, expected)
    return to_decimal(value)


def _spend(raw: Mapping[str, Any]) -> Decimal:
    cents = raw.get("spend_cents")
    usd = raw.get("cost_usd")
    if cents is not None and usd is not None:
        both = ("give ", event_field("spend_cents"), " or ", event_field("cost_usd"), ", not both")
        raise EventError("cost_usd", NOT_SHOWN, both)
    if usd is not None:
        dollars = _non_negative_number(usd, "cost_usd", MAX_AMOUNT / 100)
        return to_decimal(float(dollars * 100)) if dollars else Decimal(0)
    if cents is not None:
        return _non_negative_number(cents, "spend_cents")
    return Decimal(0)


def _metrics(value: Any) -> dict[str, Decimal]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventError("metrics", value, "expected an object of numbers")
    if len(value) > MAX_METRICS:
        raise EventError("metrics", f"{len(value)} keys", f"expected at most {MAX_METRICS} keys")
    result: dict[str, Decimal] = {}
    for key in sorted(map(str, value)):
        if not _METRIC_KEY.fullmatch(key):
            raise EventError("metrics", key, "key must match [A-Za-z0-9_.-]{1,64}")
        if key == "events":
            raise EventError("metrics.events", value[key], '"events" is reserved (the event count)')
        result[key] = _non_negative_number(value[key], f"metrics.{key}")
    return result


def from_ledger(line: Mapping[str, Any]) -> UsageEvent:
    """A `usage` ledger line back into an event; raises ValueError/KeyError/TypeError if bad.

    On the index's path for every line of a history: checks by `type(...) is`, in one pass.
    """
    event_id, tool = line["event_id"], line["tool"]
    model, source = line.get("model"), line.get("source")
    if type(event_id) is not str or type(tool) is not str:
        raise TypeError("event_id and tool must be strings")
    if (model is not None and type(model) is not str) or (
        source is not None and type(source) is not str
    ):
        raise TypeError("model and source must be strings")
    tokens = [line.get(name, 0) for name in TOKEN_FIELDS]
    for name, value in zip(TOKEN_FIELDS, tokens):
        if type(value) is not int or not 0 <= value <= MAX_TOKENS:
            raise ValueError(f"{name} is not a token count: {value!r}")
    spend = line.get("spend_cents", 0)
    metrics = line.get("metrics")
    return UsageEvent(
        event_id,
        parse_ts(line["timestamp"]),
        tool,
        model,
        source,
        tokens[0],
        tokens[1],
        tokens[2],
        tokens[3],
        _ZERO if spend == 0 and type(spend) is int else _as_decimal(spend),
        {str(k): _as_decimal(v) for k, v in metrics.items()} if metrics else {},
    )


_ZERO = Decimal(0)


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return to_decimal(value)
