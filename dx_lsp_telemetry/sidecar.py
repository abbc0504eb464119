"""`dx-lsp-telemetry serve`: the sidecar. The stdio transport starts at once and answers
`initialize` itself; the LSP server (pygls, lsprotocol: a third of a second to import) is
loaded right after, and handles that message and every other from then on."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from dx_lsp_telemetry import stdio
from dx_lsp_telemetry.lsp_names import METHODS, initialize_result
from dx_lsp_telemetry.parent import hard_exit

if TYPE_CHECKING:
    from pygls.protocol import JsonRPCProtocol

    from dx_lsp_telemetry.server import DxLanguageServer


#: how long a thread may hold the GIL while another waits (Python's default is 5 ms): a
#: status computed on the io thread must not hold back a recordUsage answer that long
SWITCH_INTERVAL = 0.001


def serve(client_process_id: int | None = None) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    loaded: list[DxLanguageServer] = []

    def load(dispatcher: stdio.Dispatcher) -> JsonRPCProtocol:
        from dx_lsp_telemetry.server import create_server, setup_transport

        server = create_server()
        server.parent_pid = client_process_id
        server.protocol.set_writer(dispatcher.writer)
        setup_transport(server, dispatcher)
        loaded.append(server)
        return server.protocol

    try:
        stdio.serve(load, methods=METHODS, early_initialize=initialize_result)
    finally:
        for server in loaded:
            with contextlib.suppress(OSError):
                server.telemetry.sync_to_disk()
    hard_exit(0)
    return 0
