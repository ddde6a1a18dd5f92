"""Found by the postgres-restart drill: the scheduler exited when PostgreSQL restarted (its
leader session died), leaving nobody to re-offer work the broker lost. It must step down and
lead again once the database is back."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine

from actors.scheduler import LEADER_LOCK_KEY
from tests.support.harness import wait_until
from tests.support.scheduler import scheduler_thread

_HOLDER = """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND objid = %s AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def _lock_holder(database_url: str) -> int | None:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        row = conn.execute(_HOLDER, (LEADER_LOCK_KEY,)).fetchone()
    return None if row is None else int(row[0])


def test_the_scheduler_leads_again_after_its_database_session_is_cut(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> None:
    with scheduler_thread(database_url, redis_url, queue_prefix) as scheduler:
        wait_until(lambda: _lock_holder(database_url) is not None, 5, "a leader")
        first = _lock_holder(database_url)
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))

        wait_until(
            lambda: _lock_holder(database_url) not in (None, first) and scheduler.is_leader,
            10,
            "the scheduler to lead again on a new session",
        )
