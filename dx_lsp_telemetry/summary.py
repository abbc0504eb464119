"""A day's distinct events into totals, and into the one DX record per (date, tool)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from dx_lsp_telemetry.events import TOKEN_FIELDS, UsageEvent, decimal_to_json
from dx_lsp_telemetry.ledger import LedgerEntry

#: Enough digits that no sum of accepted values is ever rounded: a float's shortest repr has
#: no digit above 10^308 or below 10^-324, so even 10^60 of them sum exactly in 700 digits.
_EXACT = 700


@dataclass
class Totals:
    events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    spend_cents: Decimal = Decimal(0)
    metrics: dict[str, Decimal] = field(default_factory=dict)

    def add(self, event: UsageEvent) -> None:
        self.events += 1
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cache_write_tokens += event.cache_write_tokens
        self.cache_read_tokens += event.cache_read_tokens
        with localcontext() as ctx:
            ctx.prec = _EXACT
            self.spend_cents += event.spend_cents
            for key, value in event.metrics.items():
                self.metrics[key] = self.metrics.get(key, Decimal(0)) + value

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
        """TOTALS of INTERFACE.md: spend as the fractional sum, 2 decimals."""
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


def totals_by_tool(entries: Iterable[LedgerEntry]) -> dict[str, Totals]:
    result: dict[str, Totals] = {}
    for entry in entries:
        result.setdefault(entry.event.tool, Totals()).add(entry.event)
    return result


def build_record(
    *,
    email: str,
    day: date,
    tool: str,
    events: Iterable[UsageEvent],
    model_breakdowns: bool,
) -> dict[str, Any]:
    """The `aiToolMetrics.push` body. No usage events means an inactive day (zeros)."""
    totals = Totals()
    by_model: dict[str, Totals] = {}
    for event in events:
        if event.tool != tool:
            continue
        totals.add(event)
        if event.model:
            by_model.setdefault(event.model, Totals()).add(event)
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
    if model_breakdowns and by_model:
        record["model_breakdowns"] = [
            {
                "model": model,
                **{name: getattr(t, name) for name in TOKEN_FIELDS},
                "spend_cents": round_cents(t.spend_cents),
            }
            for model, t in sorted(by_model.items())
        ]
    return record


def record_hash(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
