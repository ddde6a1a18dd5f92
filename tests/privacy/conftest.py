"""The engine with its downloaded media in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.harness import RunningEngine, running_engine


@pytest.fixture
def engine(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str, tmp_path: Path
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        MEDIA_DIR=str(tmp_path / "media"),
    ) as running:
        yield running
