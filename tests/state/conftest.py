from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.state.redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own (skips when the binary is missing)."""
    directory: Path = tmp_path_factory.mktemp("redis")
    with redis_server(directory) as url:
        yield url
