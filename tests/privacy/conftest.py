"""The engine with its downloaded media in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.engines import EngineOf
from tests.support.harness import RunningEngine


@pytest.fixture
def engine(engine_of: EngineOf, clean_db: Engine, tmp_path: Path) -> RunningEngine:
    return engine_of(MEDIA_DIR=str(tmp_path / "media"))
