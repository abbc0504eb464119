"""The command line (`dx-lsp-telemetry VERB`). `main` stays here: it is the console script's
entry point (`dx_lsp_telemetry.cli:main`)."""

from dx_lsp_telemetry.cli.main import main

__all__ = ["main"]
