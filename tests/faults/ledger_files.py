"""The fault tests' own oracle: the ledger and journal files read as the README describes
them (one JSON object per line), independent of the product's reading code."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

TOKENS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
_USAGE_OPTIONAL = {"model", "source", "metrics", "recorded_at"}


@dataclass
class LedgerFiles:
    #: usage lines in write order (file by file, each file in its own order)
    usage: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    #: lines that do not parse, or parse into something that is not a documented ledger line
    problems: list[str] = field(default_factory=list)


def read_ledger(home: Path) -> LedgerFiles:
    out = LedgerFiles()
    for path in sorted((home / "ledger").glob("*.jsonl")):
        data = path.read_bytes()
        complete, _, tail = data.rpartition(b"\n")
        if tail:
            out.problems.append(f"{path.name}: {len(tail)} bytes after the last newline")
        for number, raw in enumerate(complete.split(b"\n") if complete else [], 1):
            where = f"{path.name} line {number}"
            try:
                line = json.loads(raw)
            except ValueError as exc:
                out.problems.append(f"{where}: not JSON ({exc}): {raw[:80]!r}")
                continue
            problem = shape_problem(line)
            if problem:
                out.problems.append(f"{where}: {problem}: {raw[:120]!r}")
            elif line["type"] == "usage":
                out.usage.append(line)
            else:
                out.sessions.append(line)
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def shape_problem(line: Any) -> str | None:
    """What makes `line` other than a usage event or a session marker, or None."""
    if not isinstance(line, dict):
        return "not a JSON object"
    if line.get("type") == "session":
        return None if isinstance(line.get("timestamp"), str) else "session without timestamp"
    if line.get("type") != "usage":
        return f"unknown type {line.get('type')!r}"
    for name in ("event_id", "timestamp", "tool"):
        if not isinstance(line.get(name), str) or not line[name]:
            return f"{name} missing or not a string"
    for name in TOKENS:
        if not _count(line.get(name)):
            return f"{name} is not a count"
    spend = line.get("spend_cents")
    if isinstance(spend, bool) or not isinstance(spend, (int, float)) or spend < 0:
        return "spend_cents is not a non-negative number"
    unknown = set(line) - {"type", "event_id", "timestamp", "tool", "spend_cents", *TOKENS}
    unknown -= _USAGE_OPTIONAL
    return f"unknown fields {sorted(unknown)}" if unknown else None


def key_of(event: dict[str, Any]) -> tuple[str, str]:
    """(UTC date, tool): the day of an event with a `Z` timestamp."""
    return event["timestamp"][:10], event["tool"]


def totals(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A totals object (README.md, "The LSP interface") of distinct events (spend summed
    exactly, then half up to 2 decimals)."""
    result: dict[str, Any] = {"events": 0, **dict.fromkeys(TOKENS, 0)}
    spend = Fraction(0)
    for e in events:
        result["events"] += 1
        for name in TOKENS:
            result[name] += e.get(name, 0)
        spend += Fraction(str(e.get("spend_cents", 0)))
    result["spend_cents"] = float(Fraction(math.floor(spend * 100 + Fraction(1, 2)), 100))
    return result


def record_numbers(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The numbers a pushed record of these distinct events carries (spend summed, then rounded
    half up to whole cents)."""
    events = list(events)
    spend = sum((Fraction(str(e.get("spend_cents", 0))) for e in events), Fraction(0))
    return {
        **{name: sum(e.get(name, 0) for e in events) for name in TOKENS},
        "spend_cents": math.floor(spend + Fraction(1, 2)),
        "events": len(events),
    }


def numbers_of(record: dict[str, Any]) -> dict[str, Any]:
    """The same numbers, read from a pushed record."""
    return {
        **{name: record[name] for name in TOKENS},
        "spend_cents": record["spend_cents"],
        "events": record["metrics"]["events"],
    }


def read_journal(home: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete line of `journal.jsonl` in order, and the lines that do not parse."""
    path = home / "journal.jsonl"
    if not path.exists():
        return [], []
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    complete, _, tail = path.read_bytes().rpartition(b"\n")
    if tail:
        problems.append(f"{len(tail)} bytes after the last newline")
    for number, raw in enumerate(complete.split(b"\n") if complete else [], 1):
        try:
            line = json.loads(raw)
            assert isinstance(line, dict) and {"date", "tool", "state"} <= set(line)
            entries.append(line)
        except (ValueError, AssertionError):
            problems.append(f"line {number}: {raw[:80]!r}")
    return entries, problems
