"""`dx-lsp-telemetry serve`: the sidecar. The stdio transport starts at once and answers
`initialize` itself; the LSP server (pygls, lsprotocol: a third of a second to import) is
loaded right after, and handles that message and every other from then on."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from dx_lsp_telemetry import stdio
from dx_lsp_telemetry.lsp_names import RECORD_USAGE, initialize_result
from dx_lsp_telemetry.parent import hard_exit

if TYPE_CHECKING:
    from pygls.protocol import JsonRPCProtocol

    from dx_lsp_telemetry.server import DxLanguageServer


def serve(client_process_id: int | None = None) -> int:
    loaded: list[DxLanguageServer] = []

    def load(dispatcher: stdio.Dispatcher) -> JsonRPCProtocol:
        from dx_lsp_telemetry.server import create_server, record_fast_path

        server = create_server()
        server.parent_pid = client_process_id
        server.protocol.set_writer(dispatcher.writer)
        dispatcher.fast_paths[RECORD_USAGE] = record_fast_path(server)
        dispatcher.after_batch.append(server.telemetry.write_queued)
        loaded.append(server)
        return server.protocol

    try:
        stdio.serve(load, initialize_result)
    finally:
        for server in loaded:
            with contextlib.suppress(OSError):
                server.telemetry.sync_to_disk()
    hard_exit(0)
    return 0
