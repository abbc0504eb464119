import sys

from dx_lsp_telemetry.cli import main

sys.exit(main())
