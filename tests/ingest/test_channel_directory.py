"""The webhook path's channel cache on a real PostgreSQL: one read per channel and expiry."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine, event

from api.channels import ChannelDirectory
from engine.db import create_async_db_engine
from engine.errors import DatabaseUnavailableError
from tests.support.harness import seed_whatsapp


def test_a_burst_on_an_expired_entry_reads_the_channel_once(
    clean_db: Engine, database_url: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    statements: list[str] = []

    async def main() -> None:
        db = create_async_db_engine(database_url, pool_size=2)

        def record(_c: Any, _cur: Any, sql: str, *_args: Any) -> None:
            if "FROM channels" in sql:
                statements.append(sql)

        event.listen(db.sync_engine, "before_cursor_execute", record)
        directory = ChannelDirectory(db, ttl_s=0.2)
        try:
            for _ in range(2):  # cold, then expired
                found = await asyncio.gather(*(directory.get(seeded.channel_id) for _ in range(50)))
                assert {c.id if c else None for c in found} == {seeded.channel_id}
                assert await directory.get(10_000_000) is None
                await asyncio.sleep(0.25)
        finally:
            await db.dispose()

    asyncio.run(main())
    # One read per channel per expiry (the unknown id is cached as unknown too), not 50.
    assert len(statements) == 4


def test_an_unreachable_database_fails_every_waiter_and_is_not_cached() -> None:
    async def main() -> None:
        db = create_async_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/none", pool_size=1)
        directory = ChannelDirectory(db)
        try:
            for _ in range(2):  # a failed read leaves nothing behind: the next one tries again
                outcomes = await asyncio.gather(
                    *(directory.get(1) for _ in range(10)), return_exceptions=True
                )
                assert all(isinstance(o, DatabaseUnavailableError) for o in outcomes)
        finally:
            await db.dispose()

    asyncio.run(main())
