import sys

from dx_lsp_telemetry.cli.main import main

sys.exit(main())
