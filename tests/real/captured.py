"""The committed captures of the real tools (`tests/real/captures/<tool>/`, README there):
what the fake API answered, and where each tool's files are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.real.fake_model_api import ModelCall

CAPTURES = Path(__file__).resolve().parent / "captures"


def capture_dir(tool: str) -> Path:
    return CAPTURES / tool


def model_calls(tool: str) -> list[ModelCall]:
    """The model calls the fake answered while the tool's capture was made, in order."""
    lines = (capture_dir(tool) / "fake-api.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [ModelCall.from_log(e) for e in entries if e.get("index") is not None]


def copy_files(tool: str, under: str, to: Path) -> Path:
    """A copy of the tool's captured folder `under` (e.g. `home/.claude`) at `to`."""
    shutil.copytree(capture_dir(tool) / "files" / under, to)
    return to
