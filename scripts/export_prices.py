"""Export the offline price data of `spend.estimate` from the `genai-prices` package.

Writes `dx_lsp_telemetry/sources/prices.json`, which `dx_lsp_telemetry.sources.pricing` reads at
run time without `genai-prices` (it needs pydantic's compiled core and Python >= 3.11; the VS Code
bundle carries neither). Run it in the dev environment, where `genai-prices` is installed
(`make prices`); regenerating is a deliberate act, like updating a lock file:

    .venv/bin/python scripts/export_prices.py [--date YYYY-MM-DD] [--check] [--output PATH]

Only what an estimate needs is kept: the providers a bare model name can reach (those with a
model-match clause, in their order, and the providers they fall back to), each with its models in
order, each model with its match clause and its price periods. A period is a constraint (none, a
UTC start date, or a daily UTC time window) and the effective USD prices per million tokens of
five buckets, as `genai-prices` charges them for a short request (below any long-context tier):

    [input, output, cache write (5 minutes), cache write (1 hour), cache read]

A cache bucket without a price of its own is charged as `genai-prices` charges it (a cache read
or write at the input price, a 1-hour write at the 5-minute one); fixed per-request fees are not
per-token prices and are left out. A period `genai-prices` cannot price is exported as null.

The output is deterministic for a given `genai-prices` version and date: `--date` (or
SOURCE_DATE_EPOCH) pins the date of the header, and `--check` compares with the committed file,
ignoring that date.

Beside the data it writes `prices.LICENSE`: the data is genai-prices', under its MIT licence,
which asks that its notice go wherever the data goes (the wheel, the .vsix's bundle).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import date, datetime, time, timezone
from decimal import Decimal
from importlib.metadata import distribution, version
from pathlib import Path
from typing import Any

from genai_prices import Usage, types
from genai_prices.data import providers as all_providers

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "dx_lsp_telemetry" / "sources" / "prices.json"

FORMAT = 1
BUCKETS = "input, output, cache write (5 min), cache write (1 h), cache read"
#: the reference request sizes: far below the lowest long-context tier
N = 1000
#: the usages whose price isolates one bucket each (input includes the cache buckets)
USAGES: tuple[dict[str, int], ...] = (
    {"input_tokens": 1},
    {"output_tokens": 1},
    {"input_tokens": 1, "cache_write_tokens": 1},
    {"input_tokens": 1, "cache_write_tokens": 1, "cache_write_1h_tokens": 1},
    {"input_tokens": 1, "cache_read_tokens": 1},
)
MILLION = Decimal(1_000_000)


def clause(c: Any) -> list[Any]:
    """A match clause as `[kind, text]` or `[or|and, clause, ...]`.

    Texts are lower-cased (the reference is lower-cased before matching and the string clauses
    compare case-insensitively); regular expressions are kept as they are.
    """
    if isinstance(c, types.ClauseEquals):
        return ["equals", c.equals.lower()]
    if isinstance(c, types.ClauseStartsWith):
        return ["starts_with", c.starts_with.lower()]
    if isinstance(c, types.ClauseEndsWith):
        return ["ends_with", c.ends_with.lower()]
    if isinstance(c, types.ClauseContains):
        return ["contains", c.contains.lower()]
    if isinstance(c, types.ClauseRegex):
        return ["regex", c.regex]
    if isinstance(c, types.ClauseOr):
        return ["or", *(clause(x) for x in c.or_)]
    if isinstance(c, types.ClauseAnd):
        return ["and", *(clause(x) for x in c.and_)]
    raise TypeError(f"unknown match clause {c!r}")


def utc_time(t: time) -> str:
    if t.tzinfo is not None:
        t = datetime.combine(date(2000, 1, 1), t).astimezone(timezone.utc).time()
    return t.replace(tzinfo=None).isoformat()


def constraint(c: Any) -> str | list[str] | None:
    """None (always), a start date "YYYY-MM-DD", or a daily UTC window ["HH:MM:SS", "HH:MM:SS"]."""
    if c is None:
        return None
    if isinstance(c, types.StartDateConstraint):
        return c.start_date.isoformat()
    if isinstance(c, types.TimeOfDateConstraint):
        return [utc_time(c.start_time), utc_time(c.end_time)]
    raise TypeError(f"unknown price constraint {c!r}")


def total(price: Any, usage: dict[str, int], n: int) -> Decimal:
    result = price.calc_price(Usage(**{k: v * n for k, v in usage.items()}))
    return Decimal(result["total_price"])


def bucket_prices(price: Any) -> list[Decimal] | None:
    """USD per million tokens of each bucket, or None where genai-prices cannot price it."""
    out: list[Decimal] = []
    try:
        for usage in USAGES:
            # the slope between two short requests: a fixed per-request fee cancels out
            slope = (total(price, usage, 2 * N) - total(price, usage, N)) / N
            out.append(normal(slope * MILLION))
    except ValueError as exc:
        print(f"  no prices: {exc}", file=sys.stderr)
        return None
    return out


def normal(d: Decimal) -> Decimal:
    d = d.normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def periods(model: Any) -> list[list[Any]]:
    if isinstance(model.prices, list):
        conditional = [(c.constraint, c.prices) for c in model.prices]
    else:
        conditional = [(None, model.prices)]
    return [[constraint(c), bucket_prices(p)] for c, p in conditional]


def reachable(providers: list[Any]) -> list[tuple[Any, bool]]:
    """The providers a bare model name can reach: those with a model-match clause (in their
    order), then the providers they fall back to (not matched themselves)."""
    matched = [p for p in providers if p.model_match is not None]
    ids = {p.id for p in matched}
    fallbacks: list[Any] = []
    for p in matched:
        for fid in p.fallback_model_providers or ():
            target = next((q for q in providers if q.id == fid), None)
            if target is not None and target.id not in ids:
                ids.add(target.id)
                fallbacks.append(target)
    return [(p, True) for p in matched] + [(p, False) for p in fallbacks]


def export(providers: list[Any]) -> list[dict[str, Any]]:
    out = []
    for provider, matched in reachable(providers):
        print(f"{provider.id}: {len(provider.models)} models", file=sys.stderr)
        out.append(
            {
                "id": provider.id,
                "match": clause(provider.model_match) if matched else None,
                "fallback": list(provider.fallback_model_providers or ()),
                "models": [[m.id, clause(m.match), periods(m)] for m in provider.models],
            }
        )
    return out


# -- a deterministic, diff-friendly JSON: one model per line ------------------------------------


def dump(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r}")


def render(header: dict[str, Any], providers: Iterable[dict[str, Any]]) -> str:
    lines = ["{"]
    lines += [f"{dump(key)}: {dump(value)}," for key, value in header.items()]
    lines.append('"providers": [')
    blocks = []
    for p in providers:
        head = (
            f'{{"id": {dump(p["id"])}, "match": {dump(p["match"])}, '
            f'"fallback": {dump(p["fallback"])}, "models": ['
        )
        models = ",\n".join(dump(m) for m in p["models"])
        blocks.append(f"{head}\n{models}\n]}}")
    lines.append(",\n".join(blocks))
    lines += ["]", "}"]
    return "\n".join(lines) + "\n"


def export_date(given: str | None) -> str:
    if given:
        return date.fromisoformat(given).isoformat()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), timezone.utc).date().isoformat()
    return datetime.now(timezone.utc).date().isoformat()


def without_date(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith('"exported"'))


def licence_notice() -> str:
    """genai-prices' licence, as its distribution ships it, with what it covers here."""
    dist = distribution("genai-prices")
    texts = [
        dist.read_text(f"licenses/{name}") or dist.read_text(name) or ""
        for name in dist.metadata.get_all("License-File") or []
    ]
    if not any(texts):
        raise SystemExit("genai-prices ships no licence file: cannot write prices.LICENSE")
    urls = dict(u.split(", ", 1) for u in dist.metadata.get_all("Project-URL") or [])
    source = urls.get("Source") or urls.get("Homepage") or "https://pypi.org/project/genai-prices/"
    body = "\n\n".join(t.strip() for t in texts if t)
    licence = dist.metadata.get("License-Expression") or dist.metadata.get("License") or "?"
    return (
        f"prices.json is derived from the price data of genai-prices {dist.version} ({source}), "
        f"under its licence, {licence}:\n\n{body}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--date", help="the export date of the header (default: today, UTC)")
    parser.add_argument(
        "--check", action="store_true", help="fail if the file differs (the date aside)"
    )
    args = parser.parse_args(argv)

    header = {
        "format": FORMAT,
        "genai_prices": version("genai-prices"),
        "exported": export_date(args.date),
        "buckets": f"USD per million tokens: {BUCKETS}",
    }
    text = render(header, export(all_providers))
    licence = args.output.with_suffix(".LICENSE")
    notice = licence_notice()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        current_notice = licence.read_text(encoding="utf-8") if licence.exists() else ""
        if without_date(current) != without_date(text) or current_notice != notice:
            print(
                f"{args.output} or {licence.name} is out of date: run `make prices`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date", file=sys.stderr)
        return 0
    args.output.write_text(text, encoding="utf-8")
    licence.write_text(notice, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode())} bytes) and {licence.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
