"""The local outbox: with no `instanceUrl`, a due record is written here as it would be sent."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.util.private import create_private_text, private_dir

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def outbox_path(outbox_dir: Path, day: str, tool: str) -> Path:
    return outbox_dir / f"{day}__{_UNSAFE.sub('_', tool)}.json"


def write_record(outbox_dir: Path, record: dict[str, Any]) -> Path:
    """Atomically: a reader sees the whole record or none of it."""
    private_dir(outbox_dir, within=outbox_dir.parent)
    path = outbox_path(outbox_dir, record["date"], record["tool"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with create_private_text(tmp) as f:
        json.dump(record, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(outbox_dir)
    return path


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every filesystem syncs directories
    finally:
        os.close(fd)
