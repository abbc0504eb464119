# Real AI tools in the tests (tests/real/). The tools are pinned in tests/real/tools.py and
# installed once per version under .cache/real-tools/<name>-<version> (npm's and pip's caches
# in .cache/); `make test-real` installs what is missing, then runs every test of tests/real/
# with the real CLIs (DX_REAL_TOOLS=1). Without it, pytest skips those and says why.
.PHONY: real-tools test-real

real-tools: $(STAMP)
	$(BIN)/python -m tests.real.install

test-real: real-tools
	DX_REAL_TOOLS=1 $(BIN)/pytest tests/real
