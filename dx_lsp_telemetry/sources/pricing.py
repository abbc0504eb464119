"""Spend estimates at list prices from offline price data, never a network fetch.

The prices are a snapshot of the `genai-prices` package, `prices.json` next to this module,
written by `scripts/export_prices.py` (`make prices`) and shipped as package data: pure data, so
estimates work in the pure-Python bundle of the VS Code extension too. A model name is looked up
as `genai-prices` looks up a name without a provider: the first provider whose model-match clause
matches the lower-cased name, then the first of its models (or of the providers it falls back
to) whose clause matches; a name with a compact date (`-20251211`) is tried again with a dashed
one (`-2025-12-11`). Of the model's price periods the last one in force at the record's time (UTC)
applies, else the first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Union

log = logging.getLogger(__name__)

RESOURCE = "prices.json"
SUPPORTED_FORMAT = 1

#: USD per token of (uncached input, output, 5-minute cache write, 1-hour cache write, cache read)
Prices = tuple[Decimal, Decimal, Decimal, Decimal, Decimal]
Matcher = Callable[[str], bool]
#: a period's constraint: None (always), a start date (UTC), or a daily window [start, end) (UTC)
Constraint = Union[date, tuple[time, time], None]  # a runtime alias: 3.9 has no `|` of types


@dataclass(frozen=True)
class Model:
    provider: str
    id: str
    #: (constraint, prices or None where the source could not price it), in the data's order
    periods: tuple[tuple[Constraint, Prices | None], ...]

    def prices_at(self, when: datetime) -> Prices | None:
        if len(self.periods) == 1:
            return self.periods[0][1]
        utc = when.astimezone(timezone.utc) if when.tzinfo else when
        for constraint, prices in reversed(self.periods):
            if _in_force(constraint, utc):
                return prices
        return self.periods[0][1]


@dataclass(frozen=True)
class _Provider:
    id: str
    match: Matcher | None
    fallback: tuple[str, ...]
    models: tuple[tuple[Matcher, Model], ...]


@dataclass(frozen=True)
class Snapshot:
    genai_prices: str
    exported: str
    providers: tuple[_Provider, ...]

    def lookup(self, model: str) -> Model | None:
        """The model `genai-prices` would price `model` as (given no provider), or None."""
        ref = model.lower()
        provider = next((p for p in self.providers if p.match is not None and p.match(ref)), None)
        if provider is None:
            return None
        found = self._in_provider(provider, ref)
        if found is None:
            dashed = _dash_compact_dates(ref)
            if dashed != ref:
                found = self._in_provider(provider, dashed)
        return found

    def _in_provider(self, provider: _Provider, ref: str) -> Model | None:
        """The first match among the provider's models, then among those of the providers it
        falls back to (theirs only: one step)."""
        candidates = [provider]
        for fid in provider.fallback:
            candidates += [p for p in self.providers if p.id == fid][:1]
        for p in candidates:
            for match, model in p.models:
                if match(ref):
                    return model
        return None


def _in_force(constraint: Constraint, utc: datetime) -> bool:
    if constraint is None:
        return True
    if isinstance(constraint, date):
        return utc.date() >= constraint
    start, end = constraint
    now = utc.time().replace(tzinfo=None)
    if end < start:  # across midnight
        return now >= start or now < end
    return start <= now < end


_COMPACT_DATE = re.compile(r"-(20\d\d)(\d\d)(\d\d)(?=[-:]|$)")


def _dash_compact_dates(ref: str) -> str:
    """`gpt-5.2-20251211` -> `gpt-5.2-2025-12-11` (valid dates only)."""

    def dashed(m: re.Match[str]) -> str:
        year, month, day = (int(g) for g in m.groups())
        try:
            date(year, month, day)
        except ValueError:
            return m.group(0)
        return f"-{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(dashed, ref)


# -- reading the snapshot ------------------------------------------------------------------------


def _matcher(clause: Sequence[Any]) -> Matcher:
    """A match clause of the snapshot (texts already lower-cased) as a predicate on a lower-cased
    name."""
    kind, *args = clause
    if kind in ("or", "and"):
        parts = tuple(_matcher(a) for a in args)
        if kind == "or":
            return lambda ref: any(p(ref) for p in parts)
        return lambda ref: all(p(ref) for p in parts)
    (text,) = args
    if not isinstance(text, str):
        raise ValueError(f"bad match clause {clause!r}")
    if kind == "equals":
        return lambda ref: ref == text
    if kind == "starts_with":
        return lambda ref: ref.startswith(text)
    if kind == "ends_with":
        return lambda ref: ref.endswith(text)
    if kind == "contains":
        return lambda ref: text in ref
    if kind == "regex":
        pattern = re.compile(text)
        return lambda ref: pattern.search(ref) is not None
    raise ValueError(f"unknown match clause {kind!r}")


_PER_TOKEN = Decimal(1_000_000)


def _prices(raw: Any) -> Prices | None:
    if raw is None:
        return None
    p_in, p_out, p_write, p_write_1h, p_read = (Decimal(v) / _PER_TOKEN for v in raw)
    return (p_in, p_out, p_write, p_write_1h, p_read)


def _constraint(raw: Any) -> Constraint:
    if raw is None:
        return None
    if isinstance(raw, str):
        return date.fromisoformat(raw)
    start, end = raw
    return (time.fromisoformat(start), time.fromisoformat(end))


def parse(text: str) -> Snapshot:
    data = json.loads(text, parse_float=Decimal)
    if data.get("format") != SUPPORTED_FORMAT:
        raise ValueError(f"unsupported price data format {data.get('format')!r}")
    providers = []
    for p in data["providers"]:
        models = tuple(
            (
                _matcher(match),
                Model(
                    provider=p["id"],
                    id=model_id,
                    periods=tuple((_constraint(c), _prices(v)) for c, v in periods),
                ),
            )
            for model_id, match, periods in p["models"]
        )
        providers.append(
            _Provider(
                id=p["id"],
                match=None if p["match"] is None else _matcher(p["match"]),
                fallback=tuple(p["fallback"]),
                models=models,
            )
        )
    return Snapshot(
        genai_prices=str(data["genai_prices"]),
        exported=str(data["exported"]),
        providers=tuple(providers),
    )


@lru_cache(maxsize=1)
def snapshot() -> Snapshot | None:
    """The bundled price data, read once; None if it is missing or unreadable."""
    try:
        text = (
            resources.files("dx_lsp_telemetry.sources")
            .joinpath(RESOURCE)
            .read_text(encoding="utf-8")
        )
        return parse(text)
    except Exception as exc:  # a broken install: no estimates, not a crash
        log.warning("no price data for spend estimates: %s", exc)
        return None


def available() -> bool:
    return snapshot() is not None


@lru_cache(maxsize=4096)
def lookup(model: str) -> Model | None:
    data = snapshot()
    return None if data is None else data.lookup(model)


def unit_prices(model: str, when: datetime) -> Prices | None:
    """USD per token for (uncached input, output, 5-minute cache write, 1-hour cache write, cache
    read) of `model` at `when` (a naive time is UTC), or None if unknown."""
    found = lookup(model)
    return None if found is None else found.prices_at(when)


def estimate_cents(
    model: str | None,
    when: datetime,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int,
    cache_read_tokens: int,
    cache_write_1h_tokens: int = 0,
) -> Decimal | None:
    """The estimated spend in cents at list prices, or None (no model, unknown, no data).

    Linear in the tokens (per-token prices of the model at that time); tiered prices above
    large contexts are not applied, so long-context requests are estimated low.
    """
    if not model:
        return None
    prices = unit_prices(model, when)
    if prices is None:
        return None
    p_in, p_out, p_write, p_write_1h, p_read = prices
    usd = (
        p_in * input_tokens
        + p_out * output_tokens
        + p_write * (cache_write_tokens - cache_write_1h_tokens)
        + p_write_1h * cache_write_1h_tokens
        + p_read * cache_read_tokens
    )
    return usd * 100
