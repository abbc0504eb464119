"""`dx-lsp-telemetry serve`: the sidecar. The stdio transport and the session (`initialize`,
`initialized`, `recordUsage`, `status`) start at once; pygls, a third of a second to import,
loads on a thread when a message needs it and serves the other methods."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from dx_lsp_telemetry import stdio
from dx_lsp_telemetry.lsp_names import METHODS
from dx_lsp_telemetry.parent import hard_exit
from dx_lsp_telemetry.session import Session

if TYPE_CHECKING:
    from pygls.protocol import JsonRPCProtocol

#: how long a thread may hold the GIL while another waits (Python's default is 5 ms): a
#: status computed on the io thread must not hold back a recordUsage answer that long
SWITCH_INTERVAL = 0.001


def serve(client_process_id: int | None = None, reader: bool = False) -> int:
    """The LSP sidecar; `reader`: a remote host's, which reads and forwards, never pushes."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    sessions: list[Session] = []

    def setup(dispatcher: stdio.Dispatcher) -> None:
        sessions.append(Session(dispatcher, client_process_id, reader))

    def prepare() -> None:
        import dx_lsp_telemetry.server  # noqa: F401 (pygls, lsprotocol, cattrs)

    def load(dispatcher: stdio.Dispatcher) -> JsonRPCProtocol:
        from dx_lsp_telemetry.server import create_server, setup_transport

        server = create_server(sessions[0])
        server.protocol.set_writer(dispatcher.writer)
        setup_transport(server, dispatcher)
        return server.protocol

    try:
        stdio.serve(setup, load, prepare=prepare, methods=METHODS)
    finally:
        for session in sessions:
            with contextlib.suppress(OSError):
                session.telemetry.sync_to_disk()
    hard_exit(0)
    return 0
