"""Owner-only folders and files: the data folder names a person, their tools and their usage.

Everything the product creates in it is 0700 (folders) or 0600 (files), whatever the umask:
created with that mode, then chmod-ed, since a umask can only take bits away (0277 would leave
a file its owner cannot write again). A data folder left by an older version (0755 / 0644) is
tightened by `tighten`, which touches only the product's own names.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600

#: subfolders of the data folder that hold only the product's files
_OWN_FOLDERS = ("ledger", "outbox", "sources", "index")


def private_dir(path: Path, *, within: Path | None = None) -> None:
    """Create `path` 0700, and each missing folder between `within` (included; default: `path`
    itself) and it. Folders above `within` are not the product's: created with the umask's
    modes. Like `mkdir(parents=True, exist_ok=True)` otherwise."""
    top = path if within is None else within
    chain = [path]
    while chain[-1] != top:
        if chain[-1].parent == chain[-1]:
            raise ValueError(f"{path} is not inside {top}")
        chain.append(chain[-1].parent)
    top.parent.mkdir(parents=True, exist_ok=True)
    for folder in reversed(chain):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        os.chmod(folder, DIR_MODE)


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """`os.open(path, flags | O_CREAT)` as a 0600 file (an existing one of ours is tightened)."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        _tighten_fd(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private_text(path: Path) -> IO[str]:
    """A new (or truncated) 0600 text file for writing, e.g. the temporary of an atomic save."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    return os.fdopen(fd, "w", encoding="utf-8")


def tighten(home: Path) -> None:
    """Make an existing data folder owner-only: the folder, its own subfolders and what they
    hold, and the product's files at its top (never anything else a user keeps there)."""
    _tighten_path(home, DIR_MODE)
    try:
        top = list(os.scandir(home))
    except OSError:
        return
    for entry in top:
        if entry.name in _OWN_FOLDERS and entry.is_dir(follow_symlinks=False):
            _tighten_path(Path(entry.path), DIR_MODE)
            try:
                inside = list(os.scandir(entry.path))
            except OSError:
                continue
            for item in inside:
                if item.is_file(follow_symlinks=False):
                    _tighten_path(Path(item.path), FILE_MODE)
        elif _is_product_file(entry.name) and entry.is_file(follow_symlinks=False):
            _tighten_path(Path(entry.path), FILE_MODE)


def _is_product_file(name: str) -> bool:
    return (
        name in ("journal.jsonl", "settings.json")
        or name.endswith(".lock")
        or name.startswith("index")
        or (name.startswith(".") and name.endswith(".tmp"))
    )


def _tighten_path(path: Path, mode: int) -> None:
    try:
        st = os.lstat(path)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        pass  # gone, or on a read-only filesystem: what can be written is still created 0600


def _tighten_fd(fd: int) -> None:
    st = os.fstat(fd)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)
