"""A day's distinct events into totals, and into the one DX record per (date, tool)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

from dx_lsp_telemetry.record.events import TOKEN_FIELDS, UsageEvent, decimal_to_json

#: Enough digits that no sum of accepted values is ever rounded: a float's shortest repr has
#: no digit above 10^308 or below 10^-324, so even 10^60 of them sum exactly in 700 digits.
_EXACT = 700
_SUMS = Context(prec=_EXACT)
_ZERO = Decimal(0)


@dataclass
class Totals:
    events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    spend_cents: Decimal = Decimal(0)
    metrics: dict[str, Decimal] = field(default_factory=dict)
    #: per metric, how many events carry it: a replaced version may take a key away again
    metric_events: dict[str, int] = field(default_factory=dict)

    def add(self, event: UsageEvent, sign: int = 1) -> None:
        """Count `event` in (sign 1) or take it out again (sign -1: a replaced version)."""
        self.events += sign
        self.input_tokens += sign * event.input_tokens
        self.output_tokens += sign * event.output_tokens
        self.cache_write_tokens += sign * event.cache_write_tokens
        self.cache_read_tokens += sign * event.cache_read_tokens
        self._add_amounts(
            event.spend_cents, event.metrics, dict.fromkeys(event.metrics, sign), sign
        )

    def merge(self, other: Totals, sign: int = 1) -> None:
        self.events += sign * other.events
        self.input_tokens += sign * other.input_tokens
        self.output_tokens += sign * other.output_tokens
        self.cache_write_tokens += sign * other.cache_write_tokens
        self.cache_read_tokens += sign * other.cache_read_tokens
        counts = {k: sign * n for k, n in other.metric_events.items()}
        self._add_amounts(other.spend_cents, other.metrics, counts, sign)

    def _add_amounts(
        self, spend: Decimal, metrics: Mapping[str, Decimal], counts: Mapping[str, int], sign: int
    ) -> None:
        if not spend and not metrics:
            return
        # a context of its own, not `localcontext()`: this runs for every event indexed
        add = _SUMS.add if sign > 0 else _SUMS.subtract
        if spend:
            self.spend_cents = add(self.spend_cents, spend)
        for key, value in metrics.items():
            # in a change still to be applied (a version replaced) a count may be 0 or below
            # with a value; in a sum, no event carrying the key means no key
            carried = self.metric_events.get(key, 0) + counts.get(key, 0)
            total = add(self.metrics.get(key, _ZERO), value)
            if carried or total:
                self.metrics[key] = total
                self.metric_events[key] = carried
            else:
                self.metrics.pop(key, None)
                self.metric_events.pop(key, None)

    @property
    def token_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )

    def is_zero(self) -> bool:
        return self.events == 0

    def to_status(self) -> dict[str, Any]:
        """A totals object (README, "The LSP interface"): spend the fractional sum, 2 decimals."""
        return {
            "events": self.events,
            **{name: getattr(self, name) for name in TOKEN_FIELDS},
            "spend_cents": float(_quantize(self.spend_cents, Decimal("0.01"))),
        }


def _quantize(value: Decimal, unit: Decimal) -> Decimal:
    """Half up to `unit`, never refused for want of digits (the default context has 28)."""
    with localcontext() as ctx:
        ctx.prec = _EXACT
        return value.quantize(unit, ROUND_HALF_UP)


def round_cents(value: Decimal) -> int:
    """Fractional cents to DX's integer, half up (0.5 -> 1), after summing."""
    return int(_quantize(value, Decimal(1)))


@dataclass
class ToolDay:
    """One tool's day: its totals, and the same per model (events without a model: none)."""

    totals: Totals = field(default_factory=Totals)
    by_model: dict[str, Totals] = field(default_factory=dict)


def build_record(
    *, email: str, day: date, tool: str, sums: ToolDay, model_breakdowns: bool
) -> dict[str, Any]:
    """The `aiToolMetrics.push` body. No usage events means an inactive day (zeros)."""
    totals = sums.totals
    record: dict[str, Any] = {
        "email": email,
        "date": day.isoformat(),
        "is_active": totals.events > 0,
        "tool": tool,
        "metrics": {
            "events": totals.events,
            **{k: decimal_to_json(v) for k, v in sorted(totals.metrics.items())},
        },
        **{name: getattr(totals, name) for name in TOKEN_FIELDS},
        "spend_cents": round_cents(totals.spend_cents),
    }
    if model_breakdowns and sums.by_model:
        record["model_breakdowns"] = [
            {
                "model": model,
                **{name: getattr(t, name) for name in TOKEN_FIELDS},
                "spend_cents": round_cents(t.spend_cents),
            }
            for model, t in sorted(sums.by_model.items())
        ]
    return record


def record_hash(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
