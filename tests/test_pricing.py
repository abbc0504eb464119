"""Spend estimates from the bundled price snapshot (`prices.json`), without `genai-prices`.

- the snapshot answers as `genai-prices` answers (where it is installed): for every model id of
  its data and every literal of its match clauses, and realistic names, the same model and the
  same per-token prices, None where it raises LookupError; each model's price periods at their
  boundaries; and the committed file is what the exporter writes from the installed version;
- a few exact prices; unknown models; the lookup rules on a small synthetic snapshot;
- the snapshot loads, and estimates work, with no third-party package importable at all.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dx_lsp_telemetry.sources import pricing

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
WHEN = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)

REALISTIC = [
    "claude-sonnet-4-20250514",
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-opus-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-20250219",
    "claude-haiku-4-5-20251001",
    "gpt-5",
    "gpt-5-codex",
    "gpt-5.1-codex",
    "gpt-5.1-codex-mini",
    "gpt-5-mini",
    "gpt-5-2025-08-07",
    "gpt-5.2-20251211",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4.1",
    "o3",
    "o4-mini",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
    "deepseek-reasoner",
    "grok-4",
    "kimi-k2",
    "mistral-large-latest",
    "codestral-latest",
    "Claude-Sonnet-4-20250514",
    "GPT-5",
    "anthropic/claude-sonnet-4",
    "claude-nonexistent-9",
    "a-model-nobody-prices",
    "<synthetic>",
]

#: the old runtime's reference usages (tokens per bucket), in our bucket order
USAGES: list[dict[str, int]] = [
    {"input_tokens": 1},
    {"output_tokens": 1},
    {"input_tokens": 1, "cache_write_tokens": 1},
    {"input_tokens": 1, "cache_write_tokens": 1, "cache_write_1h_tokens": 1},
    {"input_tokens": 1, "cache_read_tokens": 1},
]
N = 1000


def per_million(*usd: str) -> pricing.Prices:
    a, b, c, d, e = (Decimal(v) / 1_000_000 for v in usd)
    return (a, b, c, d, e)


# -- against the live package -----------------------------------------------------------------


@pytest.fixture(scope="module")
def genai() -> ModuleType:
    module: ModuleType = pytest.importorskip("genai_prices")
    return module


def genai_lookup(genai: ModuleType, ref: str, when: datetime) -> tuple[str, Any] | None:
    """(model id, per-token prices or None if it cannot price them) as the old runtime computed
    them with `calc_price(..., model_ref=ref)`, or None where it raises LookupError."""
    prices: list[Decimal] = []
    model_id = ""
    for fields in USAGES:
        usage = genai.Usage(**{k: v * N for k, v in fields.items()})
        try:
            result = genai.calc_price(usage, model_ref=ref, genai_request_timestamp=when)
        except LookupError:
            return None
        except ValueError:  # found, but price data it cannot apply
            return (model_id, None)
        model_id = result.model.id
        prices.append(Decimal(str(result.total_price)) / N)
    return (model_id, tuple(prices))


def ours(ref: str, when: datetime) -> tuple[str, Any] | None:
    model = pricing.lookup(ref)
    return None if model is None else (model.id, model.prices_at(when))


def clause_texts(clause: Any) -> Iterator[str]:
    for name in ("equals", "starts_with", "ends_with", "contains"):
        if isinstance(getattr(clause, name, None), str):
            yield getattr(clause, name)
    for name in ("or_", "and_"):
        for sub in getattr(clause, name, None) or ():
            yield from clause_texts(sub)


def test_every_name_is_priced_as_genai_prices_prices_it(genai: ModuleType) -> None:
    """Every model id of its data (all providers), every literal of every match clause, and
    realistic names: the same model, identical per-token prices, None where it raises
    LookupError; at noon and in the evening (UTC), for DeepSeek's daily windows."""
    from genai_prices.data import providers

    refs = set(REALISTIC)
    for provider in providers:
        for model in provider.models:
            refs.add(model.id)
            refs.update(clause_texts(model.match))
    compared = priced = 0
    mismatches = []
    for ref in sorted(refs):
        for when in (WHEN, WHEN.replace(hour=20)):
            theirs, mine = genai_lookup(genai, ref, when), ours(ref, when)
            compared += 1
            priced += theirs is not None
            if theirs != mine:
                mismatches.append((ref, when.hour, theirs, mine))
    assert mismatches == []
    assert compared > 5000 and priced > 1000
    print(f"compared {compared} (name, time) pairs, {priced} priced, all equal")


def test_realistic_names_have_prices(genai: ModuleType) -> None:
    for ref in REALISTIC[:27]:
        found = ours(ref, WHEN)
        assert found is not None and found[1] is not None, ref
        assert found == genai_lookup(genai, ref, WHEN)


def boundaries(periods: tuple[tuple[pricing.Constraint, Any], ...]) -> Iterator[datetime]:
    days = [date(2024, 1, 1), date(2025, 6, 15), date(2026, 6, 15), date(2030, 1, 1)]
    for constraint, _ in periods:
        if isinstance(constraint, date):
            days.append(constraint)
    tick = timedelta(microseconds=1)
    moments = [time(0, 0), time(12, 0), time(23, 59, 59)]
    for constraint, _ in periods:
        if isinstance(constraint, tuple):
            for t in constraint:
                moments.append(t)
                moments.append((datetime.combine(date(2000, 1, 2), t) - tick).time())
    for day in days:
        for moment in moments:
            at = datetime.combine(day, moment, tzinfo=UTC)
            yield at
            yield at - tick


def test_every_price_period_applies_when_genai_prices_applies_it(genai: ModuleType) -> None:
    """Each model of each provider in the snapshot (matched or not by the names above), at the
    start dates and daily windows of its periods, a tick before and at each."""
    from genai_prices.data import providers

    snapshot = pricing.snapshot()
    assert snapshot is not None
    by_id = {p.id: p for p in providers}
    checked = 0
    for provider in snapshot.providers:
        live = by_id[provider.id]
        assert [m.id for m in live.models] == [m.id for _, m in provider.models]
        for live_model, (_, model) in zip(live.models, provider.models):
            for at in boundaries(model.periods):
                expected = []
                for fields in USAGES:
                    usage = genai.Usage(**{k: v * N for k, v in fields.items()})
                    result = live_model.calc_price(usage, live, genai_request_timestamp=at)
                    expected.append(Decimal(str(result.total_price)) / N)
                assert model.prices_at(at) == tuple(expected), (model.id, at)
                checked += 1
    assert checked > 1000
    print(f"checked {checked} (model, time) pairs")


def test_naive_times_are_utc(genai: ModuleType) -> None:
    for hour in (0, 1, 12, 20):
        at = datetime(2025, 10, 1, hour)
        assert ours("deepseek-chat", at) == genai_lookup(genai, "deepseek-chat", at)
        assert ours("deepseek-chat", at) == ours("deepseek-chat", at.replace(tzinfo=UTC))
    berlin = timezone(timedelta(hours=2))
    at = datetime(2025, 10, 1, 1, 0, tzinfo=berlin)  # 23:00 UTC the day before
    assert ours("deepseek-chat", at) == genai_lookup(genai, "deepseek-chat", at)


def load_exporter() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "export_prices", ROOT / "scripts/export_prices.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_snapshot_is_what_the_exporter_writes(genai: ModuleType) -> None:
    """Like a lock file: regenerate (`make prices`) when genai-prices is upgraded."""
    exporter = load_exporter()
    committed = ROOT / "dx_lsp_telemetry/sources/prices.json"
    assert exporter.main(["--check", "--output", str(committed)]) == 0
    snapshot = pricing.snapshot()
    assert snapshot is not None and snapshot.genai_prices == genai.__version__


def test_the_export_is_deterministic(genai: ModuleType, tmp_path: Path) -> None:
    exporter = load_exporter()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert exporter.main(["--output", str(a), "--date", "2025-01-02"]) == 0
    assert exporter.main(["--output", str(b), "--date", "2025-01-02"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert pricing.parse(a.read_text()).exported == "2025-01-02"


# -- the bundled data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "usd_per_million"),
    [
        ("claude-sonnet-4-20250514", ("3", "15", "3.75", "6", "0.30")),
        ("claude-opus-4-1-20250805", ("15", "75", "18.75", "30", "1.50")),
        ("claude-3-5-haiku-20241022", ("0.80", "4", "1", "1.60", "0.08")),
        # no cache-write price of its own: charged as input
        ("gpt-5", ("1.25", "10", "1.25", "1.25", "0.125")),
        ("gpt-5-codex", ("1.25", "10", "1.25", "1.25", "0.125")),
        ("gpt-4o", ("2.50", "10", "2.50", "2.50", "1.25")),
    ],
)
def test_exact_prices(model: str, usd_per_million: tuple[str, ...]) -> None:
    assert pricing.unit_prices(model, WHEN) == per_million(*usd_per_million)


def test_an_estimate_prices_each_bucket() -> None:
    """Claude Sonnet 4: 1000 x $3 + 500 x $15 + 1500 x $3.75 + 500 x $6 (1-hour writes)
    + 10000 x $0.30 per million = $0.022125."""
    cents = pricing.estimate_cents(
        "claude-sonnet-4-20250514",
        WHEN,
        input_tokens=1000,
        output_tokens=500,
        cache_write_tokens=2000,
        cache_read_tokens=10000,
        cache_write_1h_tokens=500,
    )
    assert cents == Decimal("2.2125")


@pytest.mark.parametrize(
    "model",
    [None, "", "a-model-nobody-prices", "<synthetic>", "claude-nonexistent-9", "gpt-zzz"],
)
def test_unknown_models_have_no_estimate(model: str | None) -> None:
    assert (
        pricing.estimate_cents(
            model,
            WHEN,
            input_tokens=10,
            output_tokens=10,
            cache_write_tokens=0,
            cache_read_tokens=0,
        )
        is None
    )


def test_the_snapshot_is_available_and_small() -> None:
    assert pricing.available()
    snapshot = pricing.snapshot()
    assert snapshot is not None and snapshot.genai_prices and snapshot.exported
    size = (ROOT / "dx_lsp_telemetry/sources/prices.json").stat().st_size
    assert size < 200_000


# -- the lookup rules, on a synthetic snapshot --------------------------------------------------

SYNTHETIC = """{
"format": 1, "genai_prices": "0.0.0", "exported": "2025-01-01", "buckets": "",
"providers": [
{"id": "alpha", "match": ["or", ["starts_with", "al-"], ["regex", "^a\\\\d"]],
 "fallback": ["gamma"], "models": [
  ["al-one", ["and", ["starts_with", "al-one"], ["ends_with", "-x"]], [[null, [1, 2, 3, 4, 5]]]],
  ["al-two", ["equals", "al-two-2025-03-04"], [
     [null, [1, 1, 1, 1, 1]],
     ["2025-06-01", [2, 2, 2, 2, 2]],
     [["22:00:00", "02:00:00"], [3, 3, 3, 3, 3]]]],
  ["al-null", ["equals", "al-null"], [[null, null]]]
 ]},
{"id": "beta", "match": ["contains", "al-"], "fallback": [], "models": [
  ["beta-any", ["contains", ""], [[null, [9, 9, 9, 9, 9]]]]
 ]},
{"id": "gamma", "match": null, "fallback": ["beta"], "models": [
  ["g-one", ["contains", "gee"], [[null, [7, 7, 7, 7, 7]]]]
 ]}
]}
"""


@pytest.fixture
def synthetic() -> pricing.Snapshot:
    return pricing.parse(SYNTHETIC)


def found(snapshot: pricing.Snapshot, ref: str) -> str | None:
    model = snapshot.lookup(ref)
    return None if model is None else f"{model.provider}/{model.id}"


def test_synthetic_lookup_rules(synthetic: pricing.Snapshot) -> None:
    # the first provider whose clause matches, then its first matching model
    assert found(synthetic, "AL-ONE-X") == "alpha/al-one"
    assert found(synthetic, "al-one-y") is None  # "and": not both; beta matches too but is later
    # a provider without a clause is reached only as a fallback, and one step only: not beta
    # (whose model matches anything) through gamma
    assert found(synthetic, "al-gee") == "gamma/g-one"
    assert found(synthetic, "gee") is None
    assert found(synthetic, "al-nothing") is None
    # regular expressions search the lower-cased name
    assert found(synthetic, "A1-gee") == "gamma/g-one"
    # a compact date is tried again dashed; invalid dates are left alone
    assert found(synthetic, "al-two-2025-03-04") == "alpha/al-two"
    assert found(synthetic, "al-two-20250304") == "alpha/al-two"
    assert found(synthetic, "al-two-20251304") is None


def test_synthetic_price_periods(synthetic: pricing.Snapshot) -> None:
    model = synthetic.lookup("al-two-2025-03-04")
    assert model is not None

    def level(at: datetime) -> Decimal | None:
        prices = model.prices_at(at)
        return None if prices is None else prices[0] * 1_000_000

    assert level(datetime(2025, 5, 31, 12, tzinfo=UTC)) == 1
    assert level(datetime(2025, 6, 1, 0, tzinfo=UTC)) == 3  # in the window across midnight
    assert level(datetime(2025, 6, 1, 2, tzinfo=UTC)) == 2  # the window's end is excluded
    assert level(datetime(2025, 5, 31, 23, tzinfo=UTC)) == 3  # windows apply on any day
    assert level(datetime(2025, 6, 1, 1, tzinfo=timezone(timedelta(hours=5)))) == 1  # 20:00 UTC
    null = synthetic.lookup("al-null")
    assert null is not None and null.prices_at(WHEN) is None


def test_bad_snapshots_are_refused() -> None:
    with pytest.raises(ValueError):
        pricing.parse('{"format": 2, "providers": []}')
    with pytest.raises(ValueError):
        pricing.parse(SYNTHETIC.replace('"ends_with"', '"sounds_like"'))


# -- no third-party package needed ----------------------------------------------------------


def test_estimates_work_with_no_third_party_package(tmp_path: Path) -> None:
    """The package copied alone (as in the extension's bundle) and run with `-I -S`: no
    site-packages, so neither genai-prices nor pydantic can be imported."""
    shutil.copytree(
        ROOT / "dx_lsp_telemetry",
        tmp_path / "dx_lsp_telemetry",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from datetime import datetime, timezone
from dx_lsp_telemetry.sources import pricing
assert pricing.__file__.startswith({str(tmp_path)!r}), pricing.__file__
cents = pricing.estimate_cents(
    "claude-sonnet-4-20250514", datetime(2025, 10, 1, tzinfo=timezone.utc),
    input_tokens=1000, output_tokens=500, cache_write_tokens=2000, cache_read_tokens=10000,
)
assert pricing.available()
heavy = ("genai_prices", "pydantic", "pydantic_core")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(cents, loaded)
"""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    cents, loaded = done.stdout.split()
    assert Decimal(cents) == Decimal("2.1")  # 1000 x $3 + 500 x $15 + 2000 x $3.75 + 10000 x $0.30
    assert loaded == "[]"
