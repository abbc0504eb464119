"""The real tools' OTLP exports (`tests/fixtures/otlp_real/`), moved to the present."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "otlp_real"
_NANO_KEYS = ("timeUnixNano", "observedTimeUnixNano", "startTimeUnixNano", "endTimeUnixNano")


def known(tool: str) -> list[dict[str, int]]:
    """What the fake model API sent, per model call, in DX's buckets (input without the cache,
    output with reasoning, cache read, cache write)."""
    text = gzip.decompress((FIXTURES / tool / "fake-api.jsonl.gz").read_bytes()).decode()
    return [json.loads(line)["known"] for line in text.splitlines() if line.strip()]


def known_totals(tool: str) -> tuple[int, int, int, int]:
    calls = known(tool)
    return (
        sum(c["input"] for c in calls),
        sum(c["output"] for c in calls),
        sum(c["cache_write"] for c in calls),
        sum(c["cache_read"] for c in calls),
    )


def captured_at(tool: str) -> datetime:
    text = gzip.decompress((FIXTURES / tool / "fake-api.jsonl.gz").read_bytes()).decode()
    at = max(json.loads(line)["at"] for line in text.splitlines() if line.strip())
    return datetime.fromtimestamp(at, timezone.utc)


def shift_for(tool: str, to: datetime | None = None) -> timedelta:
    """How far to move the capture so that its last model call is at `to` (a minute ago)."""
    target = to or datetime.now(timezone.utc) - timedelta(minutes=1)
    return target - captured_at(tool)


def exports(tool: str, shift: timedelta | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(path, request) of each body the tool exported, in order, its times moved by `shift`."""
    delta = shift_for(tool) if shift is None else shift
    found = []
    for path in sorted((FIXTURES / tool).glob("0*.json.gz")):
        signal = path.name.split("-", 1)[1].split(".", 1)[0]
        request = json.loads(gzip.decompress(path.read_bytes()))
        found.append((f"/v1/{signal}", _moved(request, delta)))
    return found


def transcripts(tool: str, shift: timedelta) -> dict[Path, str]:
    """A Claude Code capture's transcripts by their path under the project folder (the
    session's, and its subagents' in `<session>/subagents/`), times moved by `shift`."""
    root = FIXTURES / tool / "transcripts"
    return {
        path.relative_to(root).with_suffix(""): _moved_lines(path, shift)
        for path in sorted(root.rglob("*.jsonl.gz"))
    }


def _moved_lines(path: Path, shift: timedelta) -> str:
    lines = []
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        data = json.loads(line)
        if isinstance(data.get("timestamp"), str):
            data["timestamp"] = _iso(data["timestamp"], shift)
        lines.append(json.dumps(data))
    return "\n".join(lines) + "\n"


def _moved(node: Any, delta: timedelta) -> Any:
    if isinstance(node, list):
        return [_moved(item, delta) for item in node]
    if not isinstance(node, dict):
        return node
    moved: dict[str, Any] = {}
    for key, item in node.items():
        if key in _NANO_KEYS and item not in (None, 0, "0", ""):
            shifted = int(item) + int(delta.total_seconds() * 1_000_000) * 1000
            moved[key] = str(shifted) if isinstance(item, str) else shifted
        else:
            moved[key] = _moved(item, delta)
    if node.get("key") == "event.timestamp" and isinstance(node.get("value"), dict):
        text = node["value"].get("stringValue")
        if isinstance(text, str):
            moved["value"] = {"stringValue": _iso(text, delta)}
    return moved


def _iso(text: str, delta: timedelta) -> str:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
