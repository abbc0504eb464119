"""The usage the fake model API reports: known numbers, distinct per request, in DX's four
disjoint buckets. Each protocol renders them its own way (OpenAI's and Gemini's prompt counts
include cached input; Gemini's output count excludes thoughts); a test sums these to know
exactly what the ledger must hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class KnownUsage:
    input: int  #: input that is neither read from nor written to the cache
    output: int  #: all output, reasoning included
    cache_read: int
    cache_write: int
    reasoning: int  #: the part of `output` that is reasoning (0 where a protocol has none)

    @property
    def prompt_total(self) -> int:
        """Input the way OpenAI and Gemini count it: cached input included."""
        return self.input + self.cache_read

    @property
    def total(self) -> int:
        return self.input + self.cache_read + self.cache_write + self.output

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def usage_for(index: int, *, cache_write: bool, reasoning: bool) -> KnownUsage:
    """Request `index`'s usage: input 1000+i, output 50+i, cache read 200+i, and where the
    protocol has them cache writes 700+i and reasoning 3 (inside output)."""
    return KnownUsage(
        input=1000 + index,
        output=50 + index,
        cache_read=200 + index,
        cache_write=700 + index if cache_write else 0,
        reasoning=3 if reasoning else 0,
    )


def summed(usages: Iterable[KnownUsage]) -> dict[str, int]:
    """The four DX buckets summed, named as the ledger names them."""
    totals = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
    for u in usages:
        totals["input_tokens"] += u.input
        totals["output_tokens"] += u.output
        totals["cache_read_tokens"] += u.cache_read
        totals["cache_write_tokens"] += u.cache_write
    return totals


def from_dict(data: dict[str, Any]) -> KnownUsage:
    return KnownUsage(**{k: int(data[k]) for k in KnownUsage.__dataclass_fields__})
