"""The `engine_of` fixture: the engine on this test's database, Redis and queue prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.harness import RunningEngine, running_engine

EngineOf = Callable[..., RunningEngine]


@pytest.fixture
def engine_of(database_url: str, redis_url: str, queue_prefix: str) -> Iterator[EngineOf]:
    """Start the web app (and a worker, unless start_worker=False) with settings overridden
    by keyword, e.g. `engine_of(start_worker=False, OPS_TOKEN=...)`; stopped after the test."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> RunningEngine:
            return stack.enter_context(
                running_engine(
                    database_url=database_url,
                    redis_url=redis_url,
                    queue_prefix=queue_prefix,
                    **overrides,
                )
            )

        yield start
