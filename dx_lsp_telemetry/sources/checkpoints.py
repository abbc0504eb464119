"""Per-source reading state: for each file, how far it was read and what the reader must remember.

Saved atomically after the events it covers are in the ledger. A crash in between means a
re-read, which the records' keys make harmless; a checkpoint is never ahead of the ledger. Files
are known by a hash of their path: paths name projects and sessions, which are never stored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from dx_lsp_telemetry.sources.base import FileState
from dx_lsp_telemetry.util.private import create_private_text, private_dir

log = logging.getLogger(__name__)
VERSION = 2  # 2: files keyed by a hash of their path


def file_key(path: Path | str) -> str:
    return hashlib.blake2b(str(path).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


class Checkpoints:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, FileState] = {}
        #: what `dx-lsp-telemetry sources` shows: counts, the last scan, the last error
        self.summary: dict[str, Any] = {}
        self.dirty = False
        #: (inode, size, mtime) of the file as last loaded or saved: unchanged means no re-read
        self._stamp: tuple[int, int, int] | None = None
        #: each file's state as JSON, kept until it changes: a save encodes only what changed
        self._encoded: dict[str, str] = {}
        self._load()

    def refresh(self) -> None:
        """Load again if another process saved since, or if unsaved changes are to be dropped."""
        if self.dirty or self._stamp is None or self._stamp != _stamp(self.path):
            self.files, self.summary, self.dirty, self._stamp = {}, {}, False, None
            self._encoded = {}
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                stamp = _stamp(f.fileno())
                data = json.loads(f.read())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning(
                "%s is unreadable (%s): the source's files are read again from the start; "
                "record keys keep every token counted once",
                self.path,
                exc,
            )
            return
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return
        files = data.get("files")
        if isinstance(files, dict):
            self.files = {str(k): v for k, v in files.items() if isinstance(v, dict)}
        summary = data.get("summary")
        if isinstance(summary, dict):
            self.summary = summary
        self._stamp = stamp

    def state(self, path: Path) -> FileState:
        """A deep copy: a reader may change nested values in place, and `update` must see
        the difference to save it."""
        return copy.deepcopy(self.files.get(file_key(path), {}))

    def update(self, path: Path, state: FileState) -> None:
        key = file_key(path)
        if self.files.get(key) == state:
            return  # an unchanged file: the periodic scan writes nothing
        self.files[key] = state
        self._encoded.pop(key, None)
        self.dirty = True

    def forget_missing(self, present: set[str]) -> None:
        """Drop the state of files that are gone (a deleted transcript never comes back)."""
        keep = {file_key(p) for p in present}
        gone = [k for k in self.files if k not in keep]
        for key in gone:
            del self.files[key]
            self._encoded.pop(key, None)
        self.dirty = self.dirty or bool(gone)

    def save(self) -> None:
        if not self.dirty:
            return
        private_dir(self.path.parent, within=self.path.parent.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with create_private_text(tmp) as f:
            f.write(self._json())
            f.flush()
            os.fsync(f.fileno())
            stamp = _stamp(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
        self._stamp = stamp

    def _json(self) -> str:
        """`{"version":…,"summary":…,"files":{…}}`, compact; unchanged file states as cached."""
        files = []
        for key, state in self.files.items():
            text = self._encoded.get(key)
            if text is None:
                text = self._encoded[key] = json.dumps(state, separators=(",", ":"))
            files.append(f"{json.dumps(key)}:{text}")
        summary = json.dumps(self.summary, separators=(",", ":"))
        return f'{{"version":{VERSION},"summary":{summary},"files":{{{",".join(files)}}}}}'


def _stamp(file: Path | int) -> tuple[int, int, int] | None:
    try:
        st = os.stat(file)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
