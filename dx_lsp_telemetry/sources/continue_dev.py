"""Continue: `dev_data/**/tokensGenerated.jsonl` under `${CONTINUE_GLOBAL_DIR:-~/.continue}`.

Continue appends one compact JSON line per model call (chat, edit, autocomplete; also errors and
cancels) to `dev_data/<schema>/tokensGenerated.jsonl` (`0.2.0` today, `0.1.0` for the lines it
migrated from before 2025). `promptTokens` is the input, `generatedTokens` the output (Continue's
own tokenizer estimates); there are no cache counts and no cost, so `spend.estimate` applies.

A line has no id: its key is the file's path under `dev_data`, its byte offset and its
`timestamp`, stable for an append-only file (the timestamp keeps a line written at the same
offset of a replaced file from being taken for the old one). Old lines without a `timestamp`
cannot be dated: they are skipped and counted in the read's problem. Only counts, the model and
the timestamp are used: never the user id, the user agent or the profile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from dx_lsp_telemetry.days import parse_ts
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source, SourceRecord, files_under
from dx_lsp_telemetry.sources.tail import appended_lines

FILE_NAME = "tokensGenerated.jsonl"
DEV_DATA = "dev_data"
MAX_MODEL = 200


class Continue(Source):
    name: ClassVar[str] = "continue"
    label: ClassVar[str] = "continue"
    watch_subdirs: ClassVar[tuple[str, ...]] = (DEV_DATA,)

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        text = configured.strip() or env.get("CONTINUE_GLOBAL_DIR", "").strip()
        if text:
            path = Path(text).expanduser().absolute()  # Continue resolves it against its cwd
            return [path.parent if path.name == DEV_DATA else path]
        return [Path(env.get("HOME") or Path.home()) / ".continue"]

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        return (p for p in files_under(self.watch_dirs(homes), FILE_NAME) if p.name == FILE_NAME)

    def wants(self, path: Path) -> bool:
        return path.name == FILE_NAME and DEV_DATA in path.parts

    def read(self, path: Path, state: FileState) -> ReadResult:
        where = _under_dev_data(path)
        records: list[SourceRecord] = []
        bad = undated = 0
        for offset, line in appended_lines(path, state):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise TypeError("not a JSON object")
                if raw.get("timestamp") is None:
                    undated += 1
                    continue
                records.append(_record(f"{where}:{offset}", raw))
            except (ValueError, TypeError):
                bad += 1
        problems = []
        if undated:
            problems.append(f"skipped {undated} lines without a timestamp (their day is unknown)")
        if bad:
            problems.append(f"skipped {bad} unreadable lines")
        return ReadResult(records, state, problem="; ".join(problems) or None)


def _record(where: str, raw: dict[str, Any]) -> SourceRecord:
    stamp = raw["timestamp"]
    if not isinstance(stamp, str):
        raise TypeError("the timestamp is not a string")
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        model = None
    return SourceRecord(
        key=f"{where}:{stamp}",
        timestamp=parse_ts(stamp),
        model=model.strip()[:MAX_MODEL] if model else None,
        input_tokens=_count(raw.get("promptTokens")),
        output_tokens=_count(raw.get("generatedTokens")),
    )


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return int(value)


def _under_dev_data(path: Path) -> str:
    """The file's path below its `dev_data` folder, e.g. `0.2.0/tokensGenerated.jsonl`."""
    parts = path.parts
    last = max((i for i, part in enumerate(parts) if part == DEV_DATA), default=-1)
    return "/".join(parts[last + 1 :])
