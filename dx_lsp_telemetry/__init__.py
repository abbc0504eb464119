"""dx-lsp-telemetry: a local ledger of AI-assistant usage, pushed daily to DX Data Cloud."""

__version__ = "0.1.0"
