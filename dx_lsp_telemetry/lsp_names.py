"""The sidecar's LSP names, and what it answers to `initialize`: light, so that answer can
leave before the LSP library (pygls, lsprotocol: a third of a second to import) is loaded."""

from __future__ import annotations

from typing import Any

from dx_lsp_telemetry import __version__

SERVER_NAME = "dx-lsp-telemetry"
RECORD_USAGE = "dxTelemetry/recordUsage"
STATUS = "dxTelemetry/status"
STATUS_CHANGED = "dxTelemetry/statusChanged"
#: a remote host's reader (`serve --reader`): the next events for the UI side, and how many arrived
FORWARD_TAKE = "dxTelemetry/forwardTake"
FORWARD_DONE = "dxTelemetry/forwardDone"
FLUSH_NOW = "dxTelemetry.flushNow"
RESEND_DAY = "dxTelemetry.resendDay"
MARK_PUSHED = "dxTelemetry.markPushed"
COMMANDS = (FLUSH_NOW, RESEND_DAY, MARK_PUSHED)

#: the methods this sidecar serves, True for a request; the transport answers every other
#: request with -32601 and drops every other notification (no text sync: no documents kept)
METHODS: dict[str, bool] = {
    "initialize": True,
    "initialized": False,
    "shutdown": True,
    "exit": False,
    "workspace/executeCommand": True,
    "workspace/didChangeConfiguration": False,
    "$/cancelRequest": False,
    "$/setTrace": False,
    RECORD_USAGE: True,
    STATUS: True,
    FORWARD_TAKE: True,
    FORWARD_DONE: True,
}


def initialize_result() -> dict[str, Any]:
    """What pygls computes for this server's features (a test holds the two equal)."""
    return {
        "capabilities": {
            "positionEncoding": "utf-16",
            "textDocumentSync": {"openClose": True, "change": 0, "save": False},
            "executeCommandProvider": {"commands": list(COMMANDS)},
            "workspace": {
                "workspaceFolders": {"supported": True, "changeNotifications": True},
                "fileOperations": {},
            },
        },
        "serverInfo": {"name": SERVER_NAME, "version": __version__},
    }
