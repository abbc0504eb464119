"""One Claude Code request, one event id, whichever channel saw it.

The transcript's `requestId` is the OTLP `claude_code.api_request` event's `request_id`, so
both channels key a request by it: `req:<requestId>`, hashed as every source key is
(`claude-code:<hash>`), a subagent's request too. Up to this version the transcript keyed it
by `message.id` and `requestId` together (`msg:<message.id>:<requestId>`), a subagent's or side
question's by session and `message.id` (`side:<sessionId>:<message.id>`), and users' ledgers
hold those ids.

The cut-over, so that nothing already counted counts again:
- A transcript record carries both keys. Where the ledger already holds the event of its old
  key, the record keeps the old key (a transcript read again after the upgrade: a lost
  checkpoint, and above all a resumed session, whose new file starts with copies of earlier
  responses, timestamps rewritten); otherwise it takes the request key. Whether a copy's
  timestamp is old or new does not matter: the ledger is asked, not the clock.
- The question is only asked where old ids can exist: the data folder's Claude Code
  checkpoint was written by an earlier version before this one first ran. That is decided once
  per data folder and kept in `sources/claude-code.keys.json` (`legacy`, and `since`: the
  moment of the cut-over). A fresh data folder never asks.
- OTLP has no `message.id`, so it cannot produce an old id. Its events dated before `since`
  in a data folder with old ids (requests made before the upgrade, exported in the seconds
  after it) are left to the transcript, which counts them under the ids it always had.
- Requests after the cut-over have one id on both channels: the ledger keeps one version
  (the larger token total; OTLP's counts are the more complete ones).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dx_lsp_telemetry.days import format_ts, parse_ts, utc_now
from dx_lsp_telemetry.private import FILE_MODE, private_dir

log = logging.getLogger(__name__)

LABEL = "claude-code"
KEYS_FILE = f"{LABEL}.keys.json"


def request_key(request_id: str) -> str:
    """The key of a Claude Code API request on every channel."""
    return f"req:{request_id}"


def legacy_key(message_id: str, request_id: str) -> str:
    """What versions before the request key called the same record."""
    return f"msg:{message_id}:{request_id}"


def side_key(session_id: str, message_id: str) -> str:
    """What versions before the request key called a sidechain's (a subagent's) record."""
    return f"side:{session_id}:{message_id}"


@dataclass(frozen=True)
class KeyEpoch:
    #: when this data folder's Claude Code records began to be keyed by request id
    since: datetime
    #: whether records keyed the old way may be in its ledger
    legacy: bool


def key_epoch(sources_dir: Path, clock: Callable[[], datetime] = utc_now) -> KeyEpoch:
    """The data folder's cut-over, decided by whichever process asks first (and kept)."""
    path = sources_dir / KEYS_FILE
    found = _read(path)
    if found is not None:
        return found
    private_dir(sources_dir, within=sources_dir.parent)
    # an earlier version's checkpoint: it wrote old ids (this version writes the epoch first)
    epoch = KeyEpoch(clock(), (sources_dir / f"{LABEL}.json").exists())
    text = json.dumps({"since": format_ts(epoch.since), "legacy": epoch.legacy})
    tmp = path.with_name(f".{KEYS_FILE}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process decided first: its answer stands
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: created exclusively instead
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return _read(path) or epoch


def _read(path: Path) -> KeyEpoch | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return KeyEpoch(parse_ts(data["since"]), data["legacy"] is True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # unreadable: take the safe side (ask the ledger) from now on
        log.warning("%s is unreadable (%s): old Claude Code ids are looked up", path, exc)
        return KeyEpoch(utc_now(), True)


class LegacyIds:
    """The old ids the ledger holds, asked per file read (one query for its records)."""

    def __init__(self, ledger_dir: Path) -> None:
        from dx_lsp_telemetry.ledger_index import LedgerIndex

        self._index = LedgerIndex(ledger_dir)
        self._fresh = False

    def held(self, event_ids: Iterable[str]) -> set[str]:
        if not self._fresh:
            # what earlier versions wrote is all in the ledger by now; indexed once per reader
            self._index.refresh()
            self._fresh = True
        return self._index.contains(event_ids)
