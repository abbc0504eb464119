# The two commands of the README: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/dx-lsp-telemetry demo

test: lint typecheck pytest ext-test

lint: $(STAMP)
	$(BIN)/ruff check dx_lsp_telemetry tests benchmarks scripts
	$(BIN)/ruff format --check dx_lsp_telemetry tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) peers test-system-packages
	CCUSAGE=$(CCUSAGE) $(BIN)/pytest

# Debian packages the Python tests use, installed with apt-get when missing (as extension.mk
# installs chromium): libfaketime runs real sidecars under a wall clock the test sets
# (tests/faults/test_clock.py). Where it cannot be installed, that test is skipped and says why.
TEST_DEBIAN_PACKAGES := faketime
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: test-system-packages
test-system-packages:
	@missing=""; for p in $(TEST_DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		( $(SUDO) apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing ) \
		|| echo "warning: cannot install$$missing: the tests that need it are skipped"; \
	fi

# Benchmarks print tables; they are not part of `make test` (numbers, not pass/fail).
.PHONY: bench
bench: $(STAMP) peers
	$(BIN)/python benchmarks/sidecar_startup.py 10
	CCUSAGE=$(CCUSAGE) $(BIN)/python benchmarks/claude_ingest.py
	$(BIN)/python benchmarks/record_usage.py
	$(BIN)/python benchmarks/history.py
	$(BIN)/python benchmarks/otlp_batch.py
	$(BIN)/python benchmarks/fleet.py

# Regenerate the offline price snapshot of `spend.estimate` from the installed genai-prices
# (a deliberate act, like updating a lock file; commit the result).
.PHONY: prices
prices: $(STAMP)
	$(BIN)/python scripts/export_prices.py

# Peer tools the tests compare against (ccusage).
include tests/peers/peers.mk

# The real AI CLIs the tests run offline (`make real-tools`, `make test-real`).
include tests/real/real.mk

# The VS Code extension's targets (vsix, its unit tests, the real-VS-Code end-to-end test).
-include vscode-extension/extension.mk

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
