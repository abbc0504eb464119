"""The ledger's append lock: an OS lock on `ledger/.lock`, taken once per group of appends.

filelock (used for the leader, push and rebuild locks) costs about 100 us per acquisition
here (fork tracking, deadlock checks, path resolution), a third of a recordUsage's budget;
this takes the same OS lock on the same file (flock on Unix, msvcrt.locking on Windows, as
filelock does, so both exclude each other) on a descriptor kept open, in about 3 us.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

POLL_START = 0.0005
#: how often the lock file held open is checked to still be the one in the folder
RECHECK_SECONDS = 0.5
POLL_MAX = 0.02


class LockTimeout(Exception):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"{path} is held by another process for over {timeout:g} s")
        self.path = path


class AppendLock:
    """Reentrant within a thread; exclusive between threads and processes."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._checked_at = 0.0

    def __enter__(self) -> AppendLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` (default: the lock's own; 0: not at all) or raise LockTimeout."""
        wait = self.timeout if timeout is None else timeout
        taken = self._threads.acquire(timeout=wait) if wait > 0 else self._threads.acquire(False)
        if not taken:
            raise LockTimeout(self.path, wait)
        if self._depth:
            self._depth += 1
            return
        try:
            self._lock_file(wait)
        except BaseException:
            self._threads.release()
            raise
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if not self._depth and self._fd is not None:
            _unlock(self._fd)
        self._threads.release()

    def _lock_file(self, wait: float) -> None:
        now = time.monotonic()
        if self._fd is not None and now > self._checked_at + RECHECK_SECONDS:
            self._checked_at = now
            if not _same_file(self._fd, self.path):
                os.close(self._fd)  # the folder was replaced: lock the file others will open
                self._fd = None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        pause = POLL_START
        while not _try_lock(self._fd):
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path, wait)
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
