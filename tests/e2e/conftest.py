from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ArgusProcess


@pytest.fixture(scope="session")
def argus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgusProcess]:
    """One server shared by the read-back tests; each test uses its own service names."""
    server = ArgusProcess(tmp_path_factory.mktemp("argus") / "data").start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
def fresh_argus(tmp_path: Path) -> Iterator[ArgusProcess]:
    server = ArgusProcess(tmp_path / "data")
    yield server
    server.stop()
