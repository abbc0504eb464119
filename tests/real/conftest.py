"""Tests marked `real_tools` run the real AI CLIs: only under `make test-real` (which installs
them and sets DX_REAL_TOOLS=1). Elsewhere they are skipped, saying so; the tests on the
committed captures run everywhere."""

from __future__ import annotations

import os

import pytest

ENABLED = os.environ.get("DX_REAL_TOOLS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_tools: runs the real AI tools (make test-real; DX_REAL_TOOLS=1)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="runs the real AI tools: `make test-real` (DX_REAL_TOOLS=1)")
    for item in items:
        if item.get_closest_marker("real_tools"):
            item.add_marker(skip)
