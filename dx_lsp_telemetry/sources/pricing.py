"""Spend estimates from offline price data (the `genai-prices` package), never a network fetch.

`genai-prices` is optional: it needs pydantic's compiled core, which the pure-Python bundle of
the VS Code extension cannot carry. Without it, records without a cost keep a spend of 0.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

#: the request size the per-token prices are taken at
REFERENCE_TOKENS = 1000


@lru_cache(maxsize=1)
def _calc_price() -> Any:
    try:
        from genai_prices import Usage, calc_price  # offline: its bundled snapshot
    except Exception:  # ImportError, or a broken install
        return None
    return (Usage, calc_price)


def available() -> bool:
    return _calc_price() is not None


@lru_cache(maxsize=4096)
def _unit_prices(
    model: str, when: str
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
    """USD per token for (uncached input, output, cache write, cache read, 1-hour cache write),
    or None if unknown."""
    api = _calc_price()
    if api is None:
        return None
    usage_cls, calc_price = api
    # a short request: the base prices, below any long-context tier (e.g. Claude Sonnet 4.5
    # charges every token of a request over 200k input tokens at twice the rate)
    n = REFERENCE_TOKENS
    stamp = datetime.fromisoformat(when)
    prices = []
    try:
        for fields in (
            {"input_tokens": n},
            {"output_tokens": n},
            {"input_tokens": n, "cache_write_tokens": n},
            {"input_tokens": n, "cache_read_tokens": n},
            {"input_tokens": n, "cache_write_tokens": n, "cache_write_1h_tokens": n},
        ):
            result = calc_price(usage_cls(**fields), model_ref=model, genai_request_timestamp=stamp)
            prices.append(Decimal(str(result.total_price)) / n)
    except LookupError:
        return None
    except Exception as exc:  # a price model this code does not understand
        log.warning("no price estimate for %s: %s", model, exc)
        return None
    return (prices[0], prices[1], prices[2], prices[3], prices[4])


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

    Linear in the tokens (per-token prices of the model on that date); tiered prices above
    large contexts are not applied, so long-context requests are estimated low.
    """
    if not model:
        return None
    prices = _unit_prices(model, when.date().isoformat())
    if prices is None:
        return None
    p_in, p_out, p_write, p_read, p_write_1h = prices
    usd = (
        p_in * input_tokens
        + p_out * output_tokens
        + p_write * (cache_write_tokens - cache_write_1h_tokens)
        + p_write_1h * cache_write_1h_tokens
        + p_read * cache_read_tokens
    )
    return usd * 100
