"""A scheduler run on a thread of the test process, as a separate scheduler process would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from actors.scheduler import Scheduler
from actors.wiring import build_worker_deps
from config import load_settings
from engine.runtime import Runtime


@contextmanager
def scheduler_thread(database_url: str, redis_url: str, queue_prefix: str) -> Iterator[Scheduler]:
    """A scheduler with its own connection pool, stopped (and checked stopped) on exit."""
    settings = load_settings(
        {
            "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
            "REDIS_URI": redis_url,
            "QUEUE_PREFIX": queue_prefix,
            "JWT_SECRET": "a-test-secret-of-enough-length-for-hs256",
            "INBOX_SWEEP_EVERY_S": "3600",
        }
    )
    deps = build_worker_deps(settings, Runtime(settings, database_url, redis_url, "", None))
    scheduler = Scheduler(deps, poll_s=0.1)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        yield scheduler
    finally:
        scheduler.stop()
        thread.join(5)
        deps.db.dispose()
        assert not thread.is_alive(), "scheduler did not stop"
