"""Push states per (destination, email, date, tool): an append-only, fsynced JSONL file.

Only a holder of the push lock appends, so the last line of a key is its state. A reader
(any window's status) re-reads the file when it changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

from dx_lsp_telemetry.ledger.ledger import write_all
from dx_lsp_telemetry.settings.days import format_ts, parse_ts
from dx_lsp_telemetry.settings.instance_url import normalize_instance_url
from dx_lsp_telemetry.util.private import open_private, private_dir

log = logging.getLogger(__name__)

State = Literal["sending", "pushed", "outbox", "failed", "unconfirmed", "pending"]
FailureKind = Literal["rejected", "credentials", "not_found"]
Key = tuple[str, str, str, str]  # destination, email, date, tool


def journal_key(destination: str, email: str, day: str, tool: str) -> Key:
    """One key per DX instance and person, however the settings spell them: URLs that differ
    only in scheme or host case, a default port or a trailing slash are one instance, emails
    that differ only in case one person. Lines keep the spelling they were written with (the
    record sent keeps the email as configured); only lookups are normalized, so a journal
    written before this rule reads the same."""
    if destination.startswith("dx:"):
        destination = "dx:" + normalize_instance_url(destination[3:])
    return (destination, email.strip().lower(), day, tool)


@dataclass(frozen=True)
class JournalEntry:
    destination: str
    email: str
    date: str
    tool: str
    state: State
    at: str
    error: str | None = None
    #: failed entries: why, and so whether a changed record or setting may try again
    kind: FailureKind | None = None
    retry_at: str | None = None
    attempts: int = 0
    record_hash: str | None = None
    #: sending/pushed: the ledger bytes the record was computed from, for `late`
    cover: dict[str, int] = field(default_factory=dict)
    dx_id: str | None = None
    marked: bool = False
    #: sending/pushed: the day's TOTALS as sent, so status shows what DX holds
    totals: dict[str, Any] | None = None
    record: dict[str, Any] | None = None

    @property
    def key(self) -> Key:
        return journal_key(self.destination, self.email, self.date, self.tool)

    def belongs_to(self, destination: str, email: str) -> bool:
        """Whether this is a state of that destination and person (in any spelling)."""
        return self.key[:2] == journal_key(destination, email, "", "")[:2]

    @property
    def retry_time(self) -> datetime | None:
        return parse_ts(self.retry_at) if self.retry_at else None

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "destination": self.destination,
            "email": self.email,
            "date": self.date,
            "tool": self.tool,
            "state": self.state,
            "at": self.at,
        }
        for name in ("error", "kind", "retry_at", "record_hash", "dx_id", "totals", "record"):
            value = getattr(self, name)
            if value is not None:
                line[name] = value
        if self.attempts:
            line["attempts"] = self.attempts
        if self.cover:
            line["cover"] = self.cover
        if self.marked:
            line["marked"] = True
        return line

    @staticmethod
    def from_json(line: Any) -> JournalEntry:
        """A line as `to_json` writes it; anything else (a hand edit, a bad disk) raises
        ValueError or TypeError naming the field. Nothing is coerced: a line that is not
        exactly right is not trusted at all."""
        if not isinstance(line, dict):
            raise TypeError(f"not a JSON object but {type(line).__name__}")
        for name in ("destination", "email", "date", "tool", "state", "at"):
            if not isinstance(line.get(name), str):
                raise TypeError(f"{name} is missing or not a string")
        if line["state"] not in _STATES:
            raise ValueError(f"unknown state {line['state']!r}")
        date.fromisoformat(line["date"])  # ValueError names it
        for name in ("error", "kind", "retry_at", "record_hash", "dx_id"):
            if line.get(name) is not None and not isinstance(line[name], str):
                raise TypeError(f"{name} is not a string")
        if line.get("kind") not in (None, "rejected", "credentials", "not_found"):
            raise ValueError(f"unknown kind {line['kind']!r}")
        if line.get("retry_at") is not None:
            parse_ts(line["retry_at"])  # read by the schedule: it must parse
        attempts = line.get("attempts", 0)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise TypeError("attempts is not a count")
        cover = line.get("cover") or {}
        if not isinstance(cover, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cover.values()
        ):
            raise TypeError("cover is not an object of byte offsets")
        if not isinstance(line.get("marked", False), bool):
            raise TypeError("marked is not true or false")
        for name in ("totals", "record"):
            if line.get(name) is not None and not isinstance(line[name], dict):
                raise TypeError(f"{name} is not an object")
        return JournalEntry(
            destination=line["destination"],
            email=line["email"],
            date=line["date"],
            tool=line["tool"],
            state=line["state"],
            at=line["at"],
            error=line.get("error"),
            kind=line.get("kind"),
            retry_at=line.get("retry_at"),
            attempts=attempts,
            record_hash=line.get("record_hash"),
            cover=dict(cover),
            dx_id=line.get("dx_id"),
            marked=line.get("marked", False),
            record=line.get("record"),
            totals=line.get("totals"),
        )


_STATES = {"sending", "pushed", "outbox", "failed", "unconfirmed", "pending"}
#: (file, line number, line) of each malformed line already named: every reader (the status's,
#: each push cycle's, the schedule's) loads the whole file again, but a line is named once
_warned: set[tuple[str, int, bytes]] = set()


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: dict[Key, JournalEntry] = {}
        self._seen: tuple[int, int] | None = None  # (size, mtime_ns) last loaded

    def load(self) -> bool:
        """(Re)read the file if it changed; True if it did."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):  # a data folder that is a file
            changed = self._seen is not None
            self._latest, self._seen = {}, None
            return changed
        seen = (st.st_size, st.st_mtime_ns)
        if seen == self._seen:
            return False
        latest: dict[Key, JournalEntry] = {}
        with open(self.path, "rb") as f:
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        for number, raw in enumerate(complete.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                entry = JournalEntry.from_json(json.loads(raw))
            except (ValueError, TypeError) as exc:
                seen_before = (str(self.path), number, raw)
                if seen_before not in _warned:
                    _warned.add(seen_before)
                    log.warning(
                        "%s line %d: skipped a malformed journal line (%s)",
                        self.path.name,
                        number,
                        exc,
                    )
                continue
            latest[entry.key] = entry
        self._latest, self._seen = latest, seen
        return True

    def get(self, key: Key) -> JournalEntry | None:
        return self._latest.get(journal_key(*key))

    def entries(self) -> list[JournalEntry]:
        return list(self._latest.values())

    def append(self, entry: JournalEntry) -> None:
        """Durable before it returns: a `sending` line must survive a power cut."""
        data = (
            json.dumps(entry.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
        ).encode()
        private_dir(self.path.parent)
        fd = open_private(self.path, os.O_RDWR | os.O_APPEND)
        size = -1
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            write_all(fd, data)  # a short write is an error, never a `sending` taken as durable
            os.fsync(fd)
        except OSError as exc:
            if size >= 0:
                # a torn line would be skipped on read: a state that is neither here nor gone
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            raise OSError(
                exc.errno, f"cannot write the push journal {self.path}: {exc.strerror or exc}"
            ) from exc
        finally:
            os.close(fd)
        self._latest[entry.key] = entry


def now_text() -> str:
    return format_ts(datetime.now(timezone.utc))
