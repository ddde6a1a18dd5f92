"""Group commit: many concurrent webhooks become one inbox INSERT, then one broker message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from api.backlog import BacklogFullError, InboxBacklog
from engine.errors import DatabaseUnavailableError
from engine.store.inbox import (
    COUNT_PENDING_INBOX,
    INSERT_INBOX_SQL,
    InboxWrite,
    insert_inbox_params,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

Connection = psycopg.AsyncConnection[Any]
Connect = Callable[[], Awaitable[Connection]]
Enqueue = Callable[[list[int]], Awaitable[None]]

# A group commit still unfinished after this is given up: its requests are answered 503 (the
# provider retries, and the insert is idempotent) and its connection is replaced.
COMMIT_TIMEOUT_S = 15.0


@dataclass(slots=True)
class _Pending:
    writes: Sequence[InboxWrite]
    done: asyncio.Future[list[int]]


class GroupCommitter:
    """Batches inbox writes from concurrent requests into shared statements.

    `submit` returns only once the rows are committed (the durability promise behind a 2xx):
    the ids of newly stored rows, or [] for a redelivery. Each flusher owns one connection
    from `connect` (autocommit, system scope: engine.db.connect_inbox_writer), so a group
    commit is a single INSERT round trip with no pool checkout or transaction around it; a
    connection that fails is dropped and the next group commit opens a new one.

    New rows are enqueued after commit by a separate hand-off, so a flusher never waits on
    the broker; if the broker is down the rows stay pending and the sweeper offers them
    later. When the inbox already holds `max_backlog` unprocessed rows, `submit` raises
    BacklogFullError and stores nothing, so a stalled pipeline cannot fill the disk.
    """

    def __init__(
        self,
        connect: Connect,
        enqueue: Enqueue,
        *,
        max_batch: int,
        wait_ms: int,
        max_backlog: int,
        flushers: int = 2,
    ) -> None:
        self._connect = connect
        self._backlog = InboxBacklog(max_backlog)
        self._handoff = _EnqueueHandoff(enqueue, max_batch)
        self._max_batch = max_batch
        self._wait_s = wait_ms / 1000
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"inbox-flusher-{i}") for i in range(flushers)
        ]

    async def submit(self, writes: Sequence[InboxWrite]) -> list[int]:
        pending = _Pending(writes, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)  # unbounded: the backlog bound is checked per flush
        return await pending.done

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._handoff.close()

    async def _run(self) -> None:
        conn: Connection | None = None
        try:
            while True:
                batch = [await self._queue.get()]
                if self._wait_s:
                    await asyncio.sleep(self._wait_s)
                size = len(batch[0].writes)
                while size < self._max_batch and not self._queue.empty():
                    item = self._queue.get_nowait()
                    batch.append(item)
                    size += len(item.writes)
                try:
                    conn = await self._flush(conn, batch)
                except Exception:  # a flusher that died would leave every later request hanging
                    log.exception("inbox group commit crashed", extra={"requests": len(batch)})
                    _fail(batch, DatabaseUnavailableError("inbox write failed: internal error"))
                    if conn is not None:
                        await _discard(conn)
                    conn = None
        finally:
            if conn is not None:
                await _discard(conn)

    async def _flush(self, conn: Connection | None, batch: list[_Pending]) -> Connection | None:
        """Store `batch`, settle its requests, and return the connection to use next."""
        sizes = [len(p.writes) for p in batch]
        reserved = 0
        stored: dict[tuple[int, str], int] = {}
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT_S):
                conn, admitted = await self._on_connection(
                    conn, lambda c: self._backlog.admit(lambda: _count_pending(c), sizes)
                )
                batch = self._refuse(batch, admitted)
                writes = [w for p in batch for w in p.writes]
                reserved = len(writes)
                if writes:
                    conn, stored = await self._on_connection(conn, lambda c: _insert(c, writes))
        except (psycopg.Error, OSError, TimeoutError, DatabaseUnavailableError) as exc:
            _fail(batch, DatabaseUnavailableError(f"inbox write failed: {type(exc).__name__}"))
            log.warning(
                "inbox group commit failed",
                extra={"requests": len(batch), "error": type(exc).__name__},
            )
            if conn is not None:
                await _discard(conn)
            return None
        finally:
            self._backlog.release(reserved)
        for p in batch:
            if not p.done.done():
                p.done.set_result(
                    [i for w in p.writes if (i := stored.get((w.channel_id, w.dedupe_key)))]
                )
        self._handoff.add(stored.values())
        return conn

    async def _on_connection(
        self, conn: Connection | None, work: Callable[[Connection], Awaitable[T]]
    ) -> tuple[Connection, T]:
        """`work` on `conn`, or on a new connection when there is none.

        A connection kept from an earlier group commit may have died meanwhile (a database
        restart, a dropped socket): when it fails as a connection, `work` runs once more on a
        new one. Retrying the insert is safe: a row that did commit is a duplicate the second
        time, and the sweeper enqueues it.
        """
        if conn is not None:
            try:
                return conn, await work(conn)
            except psycopg.OperationalError:
                await _discard(conn)
        conn = await self._connect()
        try:
            return conn, await work(conn)
        except BaseException:
            await _discard(conn)
            raise

    def _refuse(self, batch: list[_Pending], admitted: int) -> list[_Pending]:
        """Fail the requests past the first `admitted` with BacklogFullError; keep the rest."""
        refused = batch[admitted:]
        if refused:
            _fail(refused, BacklogFullError("the inbox backlog is at INGEST_MAX_BACKLOG"))
            log.info("webhooks refused: backlog full", extra={"requests": len(refused)})
        return batch[:admitted]


class _EnqueueHandoff:
    """Inbox ids on their way to the broker, sent by one task of their own.

    Ids that arrive while a send is in flight go out together in the next one, so under load
    several group commits share a broker message (and a worker batch). A failed send is only
    logged: the rows are durable and the sweeper re-offers them.
    """

    def __init__(self, enqueue: Enqueue, max_batch: int) -> None:
        self._enqueue = enqueue
        self._max_batch = max_batch
        self._ids: list[int] = []
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="inbox-enqueue")

    def add(self, ids: Iterable[int]) -> None:
        self._ids.extend(ids)
        if self._ids:
            self._ready.set()

    async def close(self) -> None:
        """Stop, sending whatever is still waiting."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._send_waiting()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._send_waiting()

    async def _send_waiting(self) -> None:
        ids, self._ids = sorted(self._ids), []
        try:
            for start in range(0, len(ids), self._max_batch):
                await self._enqueue(ids[start : start + self._max_batch])
        except Exception:  # noqa: BLE001 - rows are durable; the sweeper re-offers them
            log.warning(
                "enqueue after commit failed; sweeper will re-offer", extra={"rows": len(ids)}
            )


def _fail(batch: Sequence[_Pending], error: Exception) -> None:
    """Answer every request of `batch` still waiting with `error`."""
    for p in batch:
        if not p.done.done():
            p.done.set_exception(error)


async def _insert(conn: Connection, writes: Sequence[InboxWrite]) -> dict[tuple[int, str], int]:
    """Insert `writes` in one statement; the ids of the new rows by (channel, dedupe key)."""
    cur = await conn.execute(INSERT_INBOX_SQL, insert_inbox_params(writes, datetime.now(UTC)))
    return {(r[1], r[2]): int(r[0]) for r in await cur.fetchall()}


async def _count_pending(conn: Connection) -> int:
    row = await (await conn.execute(COUNT_PENDING_INBOX)).fetchone()
    return int(row[0]) if row else 0


async def _discard(conn: Connection) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await conn.close()
