# Peer tools for the agreement tests and benchmarks (ccusage 20.0.24, pinned by package-lock.json).
PEERS := tests/peers
PEERS_STAMP := $(PEERS)/node_modules/.installed
CCUSAGE := $(CURDIR)/$(PEERS)/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage

$(PEERS_STAMP): $(PEERS)/package.json $(PEERS)/package-lock.json
	cd $(PEERS) && npm ci --no-audit --no-fund --loglevel=error
	chmod +x $(CCUSAGE)  # the package ships the binary without its mode bit
	$(CCUSAGE) --version
	touch $@

.PHONY: peers
peers: $(PEERS_STAMP)
