"""Group commit: many concurrent webhooks become one inbox INSERT, then one broker message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.backlog import BacklogFullError, InboxBacklog
from engine.db import async_system_tx
from engine.errors import DatabaseUnavailableError
from engine.store.inbox import INSERT_INBOX_SQL, InboxWrite, insert_inbox_params

log = logging.getLogger(__name__)

Enqueue = Callable[[list[int]], Awaitable[None]]


@dataclass
class _Pending:
    writes: Sequence[InboxWrite]
    done: asyncio.Future[list[int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    """Batches inbox writes from concurrent requests into shared transactions.

    `submit` returns only once the rows are committed (the durability promise behind a 2xx):
    the ids of newly stored rows, or [] for a redelivery. Work is enqueued after commit; if the
    broker is down the rows stay pending and the sweeper offers them later. When the inbox
    already holds `max_backlog` unprocessed rows, `submit` raises BacklogFullError and stores
    nothing, so a stalled pipeline cannot fill the disk.
    """

    def __init__(
        self,
        db: AsyncEngine,
        enqueue: Enqueue,
        *,
        max_batch: int,
        wait_ms: int,
        max_backlog: int,
        flushers: int = 2,
    ) -> None:
        self._db = db
        self._backlog = InboxBacklog(max_backlog)
        self._enqueue = enqueue
        self._max_batch = max_batch
        self._wait_s = wait_ms / 1000
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"inbox-flusher-{i}") for i in range(flushers)
        ]

    async def submit(self, writes: Sequence[InboxWrite]) -> list[int]:
        pending = _Pending(writes)
        await self._queue.put(pending)
        return await pending.done

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._wait_s:
                await asyncio.sleep(self._wait_s)
            size = len(batch[0].writes)
            while size < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item.writes)
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        reserved = 0
        try:
            async with async_system_tx(self._db) as conn:
                admitted = await self._backlog.admit(conn, [len(p.writes) for p in batch])
                batch = self._refuse(batch, admitted)
                writes = [w for p in batch for w in p.writes]
                reserved = len(writes)
                stored: dict[tuple[int, str], int] = {}
                if writes:
                    result = await conn.execute(
                        INSERT_INBOX_SQL, insert_inbox_params(writes, datetime.now(UTC))
                    )
                    stored = {(r[1], r[2]): int(r[0]) for r in result.all()}
        except (DBAPIError, OSError, DatabaseUnavailableError) as exc:
            error = DatabaseUnavailableError(f"inbox write failed: {type(exc).__name__}")
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(error)
            log.warning("inbox group commit failed", extra={"requests": len(batch)})
            return
        finally:
            self._backlog.release(reserved)
        for p in batch:
            if not p.done.done():
                p.done.set_result(
                    [i for w in p.writes if (i := stored.get((w.channel_id, w.dedupe_key)))]
                )
        new_ids = sorted(stored.values())
        if new_ids:
            try:
                for start in range(0, len(new_ids), self._max_batch):
                    await self._enqueue(new_ids[start : start + self._max_batch])
            except Exception:  # noqa: BLE001 - rows are durable; the sweeper re-offers them
                log.warning(
                    "enqueue after commit failed; sweeper will re-offer",
                    extra={"rows": len(new_ids)},
                )

    def _refuse(self, batch: list[_Pending], admitted: int) -> list[_Pending]:
        """Fail the requests past the first `admitted` with BacklogFullError; keep the rest."""
        refused = batch[admitted:]
        if refused:
            error = BacklogFullError("the inbox backlog is at INGEST_MAX_BACKLOG")
            for p in refused:
                if not p.done.done():
                    p.done.set_exception(error)
            log.info("webhooks refused: backlog full", extra={"requests": len(refused)})
        return batch[:admitted]
