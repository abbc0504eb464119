"""A long initial read shared by worker processes: the CLI's `scan` only, never the sidecar.

The scanning process holds the source's lock and its checkpoints throughout. It hands out the
files with something left to read, largest first, a few at a time to each worker that asks, and
reads the others itself; a worker reads its files from their checkpointed states and appends the
events to the ledger itself (the ledger's lock orders the appends), and at the end sends the
files' new states back. Only once every file is read and in the ledger does the caller save the
checkpoint: a checkpoint is never ahead of the ledger. Killed half-way (any of the processes),
nothing is checkpointed and the next scan reads those files again: the records' keys make the
re-read harmless, and a worker whose scan is gone stops.

Workers are forked where that is safe (Linux, and no other thread in this process: the CLI), so
that they start at once; elsewhere they are spawned (a fresh interpreter that imports what it
needs first, about 0.1 s). Never from the sidecar: it has threads.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dx_lsp_telemetry.ledger.ledger import LedgerWriter
from dx_lsp_telemetry.ledger.paths import DataPaths
from dx_lsp_telemetry.sources import pricing
from dx_lsp_telemetry.sources.base import FileState, Source
from dx_lsp_telemetry.sources.reading import FileReader, IngestOptions, ScanStats
from dx_lsp_telemetry.sources.tail import identity

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext, SpawnContext


#: below this much to read in all, one process reads it (a worker costs more than it saves)
MIN_BYTES = 24 << 20
#: and each worker must have about this much to read
MIN_SHARE_BYTES = 8 << 20
#: files handed to a worker per request; it asks again as it starts the last of them
HANDOUT = 2
#: how often a worker waiting for files checks that its scan is still there
ALIVE_CHECK_SECONDS = 0.2

#: for each file of the scan, in its order: its new state (None: keep the checkpoint's) and what
#: reading it found
Outcome = tuple["FileState | None", ScanStats]
_Item = tuple[int, Path, FileState]
_Result = tuple[int, "FileState | None", ScanStats]


class Scan(Protocol):
    """What a shared read needs of the scan it serves (`ingest.Ingestor`, which calls it)."""

    @property
    def source(self) -> Source: ...
    @property
    def options(self) -> IngestOptions: ...
    @property
    def paths(self) -> DataPaths: ...
    def reader(self) -> FileReader: ...


def worker_count(requested: int) -> int:
    """`requested`, but no more than the processors this process may run on."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(requested, available))


def read_shared(
    ingestor: Scan, paths: Sequence[Path], states: Sequence[FileState], workers: int
) -> list[Outcome] | None:
    """Read `paths` (from `states`) in up to `workers` processes, this one included; the
    outcome of each file, in order. None if there is too little to read to be worth it.

    Raises what a worker raised, or RuntimeError if one ended without its results (killed):
    then nothing must be checkpointed.
    """
    sizes = [_unread(p, s) for p, s in zip(paths, states)]
    total = sum(sizes)
    count = min(worker_count(workers), total // MIN_SHARE_BYTES)
    if count < 2 or total < MIN_BYTES:
        return None
    todo: deque[_Item] = deque(
        (i, paths[i], states[i]) for i in sorted(range(len(paths)), key=lambda i: -sizes[i])
    )
    context = _context()
    source_class = type(ingestor.source)
    if ingestor.options.estimate:
        pricing.available()  # the price data read once, before a fork: not again in each worker
    children: list[tuple[Any, Connection]] = []
    results: list[_Result] = []
    sys.stdout.flush()  # nothing buffered twice by a forked worker
    sys.stderr.flush()
    try:
        for _ in range(count - 1):
            parent_end, child_end = context.Pipe()
            # each worker starts with its first files: it works from the start, whatever the
            # scheduler does, and asks for more as it begins the last of them
            first = [todo.popleft() for _ in range(min(HANDOUT, len(todo)))]
            process = context.Process(
                target=_worker,
                args=(child_end, source_class, ingestor.options, ingestor.paths.ledger_dir),
                kwargs={"parent": os.getpid(), "first": first},
                name=f"dx-lsp-telemetry scan ({source_class.label})",
                daemon=True,
            )
            process.start()
            child_end.close()
            children.append((process, parent_end))
        reader = ingestor.reader()
        busy = dict(children)
        while todo:
            for process, conn in list(busy.items()):
                if conn.poll() and not _answer(conn, todo, results, process):
                    del busy[process]
            if not todo:
                break  # handed out
            index, path, state = todo.popleft()
            stats = ScanStats()
            results.append((index, reader.read(path, state, stats), stats))
        reader.flush()
        for process, conn in busy.items():
            while _answer(conn, todo, results, process):
                pass
        for process, _ in children:
            process.join()
    finally:
        for process, conn in children:
            conn.close()
            if process.is_alive():
                process.terminate()
                process.join()
    outcomes: list[Outcome | None] = [None] * len(paths)
    for index, new_state, stats in results:
        outcomes[index] = (new_state, stats)
    if any(o is None for o in outcomes):
        raise RuntimeError("a scan worker left files unread")
    return [o for o in outcomes if o is not None]


def _context() -> ForkContext | SpawnContext:
    import multiprocessing  # only here: the sidecar never starts processes

    if (
        sys.platform == "linux"
        and threading.active_count() == 1
        and threading.current_thread() is threading.main_thread()
    ):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _answer(conn: Connection, todo: deque[_Item], results: list[_Result], process: Any) -> bool:
    """Take a worker's message: a request for files (answered: the next ones, or none left),
    or its results. Whether it still has files to read."""
    try:
        kind, payload = conn.recv()
    except EOFError:
        process.join(1)
        raise RuntimeError(
            f"a scan worker ended without its results (exit code {process.exitcode})"
        ) from None
    if kind == "more":
        conn.send([todo.popleft() for _ in range(min(HANDOUT, len(todo)))])
        return True
    if kind == "error":
        raise payload
    results.extend(payload)
    return False


def _unread(path: Path, state: FileState) -> int:
    """Bytes after the checkpointed offset (all of them if the file is another one now)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    if state.get("identity") != identity(st):
        return st.st_size
    return max(0, st.st_size - int(state.get("offset", 0)))


def _stop_if_orphaned(parent: int) -> None:
    if os.getppid() != parent:
        sys.exit(1)  # the scan was killed: nothing will checkpoint this, stop appending


def _worker(
    conn: Connection,
    source_class: type[Source],
    options: IngestOptions,
    ledger_dir: Path,
    *,
    parent: int,
    first: list[_Item],
) -> None:
    """A worker process: asks for files while there are some, reads them into the ledger, and
    sends their new states to the scanning process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the scanning process stops it
    try:
        reader = FileReader(source_class(), options, LedgerWriter(ledger_dir))
        results: list[_Result] = []
        queue: deque[_Item] = deque(first)
        asked, done = False, False
        if not queue:
            conn.send(("more", None))
            asked = True
        while queue or not done:
            if asked and (not queue or conn.poll()):
                # a forked worker has a copy of the scan's end of the pipe too: no end of file
                # when the scan is killed, so look at whether it is still there
                while not conn.poll(ALIVE_CHECK_SECONDS):
                    _stop_if_orphaned(parent)
                more = conn.recv()
                asked, done = False, not more
                queue.extend(more)
                continue
            if not queue:
                break
            if len(queue) == 1 and not done:
                conn.send(("more", None))  # the answer comes while this one is read
                asked = True
            _stop_if_orphaned(parent)
            index, path, state = queue.popleft()
            stats = ScanStats()
            results.append((index, reader.read(path, state, stats), stats))
        reader.flush()
        message: tuple[str, Any] = ("done", results)
    except EOFError:
        sys.exit(1)  # the scanning process is gone
    except Exception as exc:
        message = ("error", exc)
    try:
        conn.send(message)
    except Exception as exc:  # e.g. an exception that does not pickle
        conn.send(("error", RuntimeError(f"a scan worker failed: {exc!r}")))
    finally:
        conn.close()
    # all said, all appended: no need to tear the interpreter down (the scan waits for this exit)
    os._exit(0)
