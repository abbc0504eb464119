"""LSP's base protocol over stdin/stdout, in front of pygls.

pygls's own stdio loop hands every header line and body to a thread pool (four thread hops
a message) and answers nothing it cannot parse. Here one thread reads stdin in large chunks
and hands whole messages to the event loop in batches; replies written during one turn of the
loop leave in one write.

What each message gets is `dispatch`'s; its framing is `framing`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping

# the transport's face, as the session, server and sidecar name it: `stdio.Dispatcher`, ...
from dx_lsp_telemetry.lsp.dispatch import Dispatcher as Dispatcher
from dx_lsp_telemetry.lsp.dispatch import FastPath as FastPath
from dx_lsp_telemetry.lsp.dispatch import Loader, Prepare, _AnsweredByDispatcher
from dx_lsp_telemetry.lsp.dispatch import Reply as Reply
from dx_lsp_telemetry.lsp.framing import MAX_HEADER as MAX_HEADER
from dx_lsp_telemetry.lsp.framing import MAX_MESSAGE as MAX_MESSAGE
from dx_lsp_telemetry.lsp.framing import Frames as Frames
from dx_lsp_telemetry.lsp.framing import ReplyWriter
from dx_lsp_telemetry.lsp.framing import TooLarge as TooLarge

log = logging.getLogger(__name__)

READ_SIZE = 1 << 16
#: bodies read but not yet handled; beyond this the reader waits (stdin's pipe then fills up
#: and the writer waits too), so a client writing faster than the sidecar reads costs no memory
MAX_QUEUED = 2 * MAX_MESSAGE


def serve(
    setup: Callable[[Dispatcher], None],
    load: Loader,
    *,
    prepare: Prepare,
    methods: Mapping[str, bool],
) -> None:
    """Run until stdin closes (or `exit`). `setup` takes what it serves before pygls is there
    (fast paths); `prepare` imports pygls's server on a thread, `load` makes it on the loop."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_AnsweredByDispatcher())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writer = ReplyWriter(sys.stdout.buffer, loop)
        dispatcher = Dispatcher(writer, load, prepare=prepare, methods=methods)
        setup(dispatcher)
        closed = asyncio.Event()
        frames = Frames()

        def deliver(data: bytes) -> None:
            nonlocal frames
            try:
                items = frames.feed(data)
            except Exception:  # a bug here must not stop all reading: start afresh
                log.exception("cannot split stdin into messages; resynchronising")
                frames = Frames()
                return
            for item in items:
                try:
                    dispatcher.handle(item)
                except Exception:
                    log.exception("cannot handle a message")
            for done in dispatcher.after_batch:
                try:
                    done()
                except Exception:
                    log.exception("cannot finish a batch of messages")

        _read_stdin(loop, deliver, closed.set)
        await closed.wait()
        writer.flush()

    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main())


def _read_stdin(
    loop: asyncio.AbstractEventLoop, deliver: Callable[[bytes], None], closed: Callable[[], None]
) -> None:
    """Read stdin on the event loop where it is a pipe the loop can watch (no thread to wake
    per message; a client writing faster than this reads waits on the full pipe, costing no
    memory); elsewhere (Windows, a file) on a thread that hands chunks to the loop and waits
    while MAX_QUEUED bytes are not yet handled."""
    fd = 0

    def readable() -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            closed()
            return
        deliver(data)

    try:
        loop.add_reader(fd, readable)
        return
    except (NotImplementedError, OSError, ValueError):
        pass
    room = threading.Condition()
    queued = 0  # bytes handed to the loop and not yet handled

    def handled(data: bytes) -> None:
        nonlocal queued
        try:
            deliver(data)
        finally:
            with room:
                queued -= len(data)
                room.notify()

    def read() -> None:
        nonlocal queued
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                loop.call_soon_threadsafe(closed)
                return
            with room:
                while queued > MAX_QUEUED:
                    room.wait(1.0)
                queued += len(data)
            try:
                loop.call_soon_threadsafe(handled, data)
            except RuntimeError:  # the loop has ended (`exit`)
                return

    threading.Thread(target=read, name="dx-stdin", daemon=True).start()
