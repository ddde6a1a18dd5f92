"""The web's inbox group commit on a real PostgreSQL: shared statements, lost connections,
an unreachable database and a failing broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from api.ingest import GroupCommitter
from engine.db import connect_inbox_writer
from engine.errors import DatabaseUnavailableError
from engine.store.inbox import InboxWrite
from tests.conftest import count
from tests.support.harness import Seeded, seed_whatsapp


def _write(seeded: Seeded, key: str) -> InboxWrite:
    return InboxWrite(
        tenant_id=seeded.tenant_id, channel_id=seeded.channel_id, dedupe_key=key, body=b"{}"
    )


class Recorder:
    """An enqueue that records what it was given, or fails when told to."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.attempts = 0
        self.fail = False

    async def __call__(self, ids: list[int]) -> None:
        self.attempts += 1
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(ids)

    async def wait_for_attempts(self, n: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.attempts < n:
                await asyncio.sleep(0.01)


def _run(
    database_url: str,
    test: Callable[[GroupCommitter, Recorder], Awaitable[None]],
    *,
    connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]] | None = None,
    flushers: int = 2,
) -> Recorder:
    recorder = Recorder()

    async def main() -> None:
        committer = GroupCommitter(
            connect or (lambda: connect_inbox_writer(database_url)),
            recorder,
            max_batch=200,
            wait_ms=5,
            max_backlog=10_000,
            flushers=flushers,
        )
        try:
            await test(committer, recorder)
        finally:
            await committer.close()

    asyncio.run(main())
    return recorder


def test_concurrent_requests_share_statements_and_each_learns_its_rows(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    results: list[list[int]] = []

    async def test(committer: GroupCommitter, _: Recorder) -> None:
        writes = [[_write(seeded, f"k{i}")] for i in range(100)]
        results.extend(await asyncio.gather(*(committer.submit(w) for w in writes)))
        # A redelivery stores nothing and is told so.
        assert await committer.submit([_write(seeded, "k7")]) == []

    recorder = _run(database_url, test)
    ids = [r[0] for r in results]
    assert len(set(ids)) == 100
    assert count(clean_db, "SELECT count(*) FROM inbox") == 100
    # Every new row reaches the broker exactly once, several commits per message under load.
    sent = [i for message in recorder.sent for i in message]
    assert sorted(sent) == sorted(ids)
    assert len(recorder.sent) < 100
    statements = count(clean_db, "SELECT count(DISTINCT enqueued_at) FROM inbox")
    assert statements < 100


def test_a_connection_lost_between_commits_is_replaced_without_failing_a_request(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    dsn = database_url.replace("+psycopg", "")

    async def test(committer: GroupCommitter, _: Recorder) -> None:
        assert len(await committer.submit([_write(seeded, "before")])) == 1
        # PostgreSQL restarts, or a proxy drops idle sockets: the kept connection is dead.
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        assert len(await committer.submit([_write(seeded, "after")])) == 1

    _run(database_url, test, flushers=1)
    assert count(clean_db, "SELECT count(*) FROM inbox") == 2


def test_an_unreachable_database_fails_the_request_as_unavailable(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    nowhere = "postgresql+psycopg://postgres@127.0.0.1:9/flowdesk"

    async def test(committer: GroupCommitter, _: Recorder) -> None:
        with pytest.raises(DatabaseUnavailableError):
            await committer.submit([_write(seeded, "lost?")])

    _run(database_url, test, connect=lambda: connect_inbox_writer(nowhere, timeout_s=2))
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0


def test_a_broker_failure_keeps_the_rows_pending_for_the_sweeper(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    kept: list[int] = []
    later: list[int] = []

    async def test(committer: GroupCommitter, recorder: Recorder) -> None:
        recorder.fail = True
        kept.extend(await committer.submit([_write(seeded, "kept")]))
        assert len(kept) == 1  # stored and answered although the broker is down
        await recorder.wait_for_attempts(1)
        # The hand-off survives the failure: the next commit's rows reach the broker.
        recorder.fail = False
        later.extend(await committer.submit([_write(seeded, "later")]))
        await recorder.wait_for_attempts(2)

    recorder = _run(database_url, test)
    assert recorder.sent == [later]
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 2
    assert kept[0] not in [i for message in recorder.sent for i in message]


def test_an_unexpected_failure_answers_the_request_and_the_flusher_goes_on(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    attempts = 0

    async def broken_then_fine() -> psycopg.AsyncConnection[Any]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("a bug, not an outage")
        return await connect_inbox_writer(database_url)

    async def test(committer: GroupCommitter, _: Recorder) -> None:
        with pytest.raises(DatabaseUnavailableError):
            await asyncio.wait_for(committer.submit([_write(seeded, "first")]), 5)
        # The only flusher survived: the next request is stored, not left hanging.
        assert len(await asyncio.wait_for(committer.submit([_write(seeded, "next")]), 5)) == 1

    _run(database_url, test, connect=broken_then_fine, flushers=1)
    assert count(clean_db, "SELECT count(*) FROM inbox") == 1
