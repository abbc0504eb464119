"""Notice the editor's death, and exit: the sidecar must not outlive the process that
started it, nor wait for a worker thread (a push waiting on DX) to finish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

POLL_SECONDS = 1.0


def is_alive(pid: int) -> bool:
    if sys.platform == "win32":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _alive_windows(pid: int) -> bool:
    import ctypes

    synchronize, wait_timeout = 0x00100000, 0x00000102
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return False
    try:
        return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
    finally:
        kernel32.CloseHandle(handle)


async def wait_for_exit(pid: int) -> None:
    """Return once process `pid` has exited (a pidfd where Linux has one, else polling)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            loop = asyncio.get_running_loop()
            exited: asyncio.Future[None] = loop.create_future()

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(fd, on_exit)
            try:
                await exited
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            return
    while is_alive(pid):
        await asyncio.sleep(POLL_SECONDS)


def hard_exit(code: int) -> None:
    """Exit now, streams flushed: worker threads must not hold the process."""
    for stream in (sys.stderr, sys.stdout):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
