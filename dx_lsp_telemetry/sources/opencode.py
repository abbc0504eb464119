"""OpenCode: `opencode.db` (and `opencode-<channel>.db`) in `$XDG_DATA_HOME/opencode`, else
`~/.local/share/opencode` (on macOS and Windows too); the rebuilt Kilo Code's `kilo.db` in the
same places under `kilo` (or `KILO_DB`), read by the `kiloCode` source beside its legacy tasks.

What is read, and how, is `opencode_db`'s. The data folders also hold snapshots (git
repositories) and logs, too many files to watch whole: a data folder is watched without its
subfolders, where only the databases and their write-ahead logs change (a commit writes the
log: a hint for its database). The periodic scan skips an unchanged database on the size and
time of it and of its write-ahead log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from dx_lsp_telemetry.sources import sqlite_ro
from dx_lsp_telemetry.sources.base import FileState, ReadResult, Source
from dx_lsp_telemetry.sources.opencode_db import DbReader


class OpenCodeStore(Source):
    """The databases of one OpenCode-based tool, `<data>/<app>/<app>[-<channel>].db`."""

    #: the tool's data folder name and database name
    app: ClassVar[str]
    #: an environment variable naming the database file itself
    db_env: ClassVar[str | None] = None
    #: the messages the tool's importer copied (legacy tasks) are another source's to count
    skip_imports: ClassVar[bool] = False

    def __init__(self, platform: str = sys.platform) -> None:
        self._platform = platform
        self._reader = DbReader(skip_imports=self.skip_imports)

    def homes(self, configured: str, env: Mapping[str, str]) -> list[Path]:
        """The configured folder (or database file), else `db_env`'s file, else the data
        folders that exist (or the first, so that `sources` can say where it would be)."""
        text = configured.strip() or (env.get(self.db_env, "").strip() if self.db_env else "")
        if text:
            return [Path(text).expanduser()]
        home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
        xdg = env.get("XDG_DATA_HOME", "").strip()
        candidates = [(Path(xdg) if xdg else home / ".local" / "share") / self.app]
        if self._platform == "darwin":  # said of Kilo on macOS: looked at too
            candidates.append(home / "Library" / "Application Support" / self.app)
        found = [c for c in candidates if c.is_dir()]
        return found or candidates[:1]

    #: a session in progress commits many times a second: read at most once a second
    debounce_seconds: ClassVar[float] = 1.0

    def awaited_dirs(self, homes: Iterable[Path]) -> list[Path]:
        """The data folders (a database file's folder)."""
        dirs: list[Path] = []
        for home in homes:
            folder = home.parent if self._is_db(home) else home
            if folder not in dirs:
                dirs.append(folder)
        return dirs

    def watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return []

    def flat_watch_dirs(self, homes: Iterable[Path]) -> list[Path]:
        return [d for d in self.awaited_dirs(homes) if d.is_dir()]

    def file_for(self, path: Path) -> Path:
        """The database a changed write-ahead log (or rollback journal) belongs to."""
        for companion in sqlite_ro.COMPANIONS:
            if path.name.endswith(companion):
                return path.with_name(path.name[: -len(companion)])
        return path

    def files(self, homes: Iterable[Path]) -> Iterator[Path]:
        seen: set[str] = set()
        for home in homes:
            try:
                if home.is_file():
                    candidates = [home]
                elif home.is_dir():
                    candidates = sorted(p for p in home.iterdir() if self._is_db(p))
                else:
                    continue
            except OSError:
                continue
            for path in candidates:
                real = os.path.realpath(path)
                try:
                    if real in seen or (path.is_symlink() and path is not home):
                        continue
                    if path.is_file():
                        seen.add(real)
                        yield path
                except OSError:
                    continue

    def wants(self, path: Path) -> bool:
        return self._is_db(self.file_for(path))

    def _is_db(self, path: Path) -> bool:
        name, app = path.name, self.app
        return name == f"{app}.db" or (name.startswith(f"{app}-") and name.endswith(".db"))

    def read(self, path: Path, state: FileState) -> ReadResult:
        return self._reader.read(path, state)


class OpenCode(OpenCodeStore):
    name: ClassVar[str] = "opencode"
    label: ClassVar[str] = "opencode"
    app: ClassVar[str] = "opencode"


class KiloDb(OpenCodeStore):
    """The rebuilt Kilo Code's database: part of the `kiloCode` source, not a source alone."""

    name: ClassVar[str] = "kiloCode"
    label: ClassVar[str] = "kilo-code"
    app: ClassVar[str] = "kilo"
    db_env: ClassVar[str | None] = "KILO_DB"
    skip_imports: ClassVar[bool] = True
