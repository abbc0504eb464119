from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_dx import FakeDx
from tests.harness import TEST_TOKEN


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def dx() -> Iterator[FakeDx]:
    with FakeDx(TEST_TOKEN) as server:
        yield server
