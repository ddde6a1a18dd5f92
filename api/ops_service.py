"""The operations themselves, shared by the JSON API (api/ops.py) and the console."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Protocol, cast

import dramatiq
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.requests import Request

from actors.broker import queue_names
from actors.dead_letters import REQUEUE_CHUNK, after_commit, requeue_chunk
from actors.scheduler import LEADER_LOCK_KEY
from api.deps import ApiDeps, get_deps
from api.errors import ApiError, ErrorDetail
from api.resources.common import Clean
from config import Settings
from engine.db import async_system_tx
from engine.ops.dead_letters import DeadLetterPage, dead_letter_page
from engine.ops.inbox import inbox_status
from engine.ops.models import InboxStatus, QueuesOverview, SchedulerStatus, WorkerBeat
from engine.ops.queues import BrokerRef, read_queues
from engine.ops.scheduler import read_scheduler
from engine.ops.workers import read_workers
from engine.queries.common import Instant
from engine.store.dead_letters import (
    DeadLetter,
    DeadLetterFilter,
    count_live_dead_letters,
    get_dead_letter,
    purge_dead_letters,
)

log = logging.getLogger(__name__)

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$"),
    Clean,
]


class OpsDeps(ApiDeps, Protocol):
    @property
    def redis(self) -> aioredis.Redis: ...


class Selection(BaseModel):
    """Which dead letters: every field narrows; none at all needs `all: true` to act on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: Name | None = None
    actor: Name | None = None
    error_class: Name | None = None
    tenant_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    since: Instant | None = None
    until: Instant | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Selection:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("until must be later than since")
        return self

    def to_filter(self) -> DeadLetterFilter:
        return DeadLetterFilter(
            queue=self.queue,
            actor=self.actor,
            error_class=self.error_class,
            tenant_id=self.tenant_id,
            since=self.since,
            until=self.until,
        )


def ops_deps(request: Request) -> OpsDeps:
    return cast(OpsDeps, get_deps(request))


def broker_ref(settings: Settings) -> BrokerRef:
    return BrokerRef(namespace=settings.QUEUE_PREFIX, amqp_url=settings.AMQP_URL)


def bound_queues(settings: Settings) -> list[str]:
    """The queues actors are bound to (RabbitMQ names carry the prefix; see bind_actors)."""
    return queue_names(settings.QUEUE_PREFIX if settings.AMQP_URL else None)


async def queues(deps: OpsDeps) -> QueuesOverview:
    ref = broker_ref(deps.settings)
    return await read_queues(deps.redis, deps.db, ref, bound_queues(deps.settings))


async def workers(deps: OpsDeps) -> list[WorkerBeat]:
    return await read_workers(deps.redis, deps.settings.QUEUE_PREFIX)


async def inbox(deps: OpsDeps) -> InboxStatus:
    async with async_system_tx(deps.db) as conn:
        return await conn.run_sync(inbox_status)


async def scheduler(deps: OpsDeps) -> SchedulerStatus:
    return await read_scheduler(deps.redis, deps.db, deps.settings.QUEUE_PREFIX, LEADER_LOCK_KEY)


async def page(
    deps: OpsDeps, f: DeadLetterFilter, *, limit: int, cursor: int | None
) -> DeadLetterPage:
    async with async_system_tx(deps.db) as conn:
        return await conn.run_sync(lambda c: dead_letter_page(c, f, limit=limit, cursor=cursor))


async def live_dead_letters(deps: OpsDeps) -> int:
    """How many dead letters are not requeued, over every queue and tenant."""
    async with async_system_tx(deps.db) as conn:
        counts = await conn.run_sync(count_live_dead_letters)
    return sum(n for _, _, n in counts)


async def one(deps: OpsDeps, dead_letter_id: int) -> DeadLetter:
    async with async_system_tx(deps.db) as conn:
        found = await conn.run_sync(lambda c: get_dead_letter(c, dead_letter_id))
    if found is None:
        raise ApiError(404, "not_found", "Dead letter not found.")
    return found


async def requeue(deps: OpsDeps, f: DeadLetterFilter, *, who: str) -> list[int]:
    """Requeue matching live dead letters, chunk by chunk, each chunk atomic with its rows.

    The claim and the enqueue share one transaction (actors/dead_letters.py): an enqueue that
    fails rolls the rows back to dead, so nothing is lost.
    """
    broker = dramatiq.get_broker()
    done: list[int] = []
    while True:
        async with async_system_tx(deps.db) as conn:
            chunk = await conn.run_sync(lambda c: requeue_chunk(c, broker, f))
        await asyncio.to_thread(after_commit, broker, chunk)
        done.extend(d.id for d in chunk.dead_letters)
        if len(chunk.dead_letters) < REQUEUE_CHUNK:
            break
    log.info("dead letters requeued", extra={"count": len(done), "operator": who})
    return done


async def requeue_one(deps: OpsDeps, dead_letter_id: int, *, who: str) -> None:
    if not await requeue(deps, DeadLetterFilter(ids=(dead_letter_id,)), who=who):
        found = await one(deps, dead_letter_id)  # 404 when it does not exist
        if found.requeued_at is not None:
            raise ApiError(409, "conflict", "This dead letter was already requeued.")
        raise ApiError(409, "conflict", "This dead letter is being requeued right now.")


async def purge(deps: OpsDeps, f: DeadLetterFilter, *, who: str) -> int:
    async with async_system_tx(deps.db) as conn:
        count = await conn.run_sync(lambda c: purge_dead_letters(c, f))
    log.info("dead letters purged", extra={"count": count, "operator": who})
    return count


def require_selection(selection: Selection, *, everything: bool) -> DeadLetterFilter:
    """The filter to act on; an empty one only when the caller said all."""
    f = selection.to_filter()
    if f.is_empty and not everything:
        raise ApiError(
            422,
            "invalid_request",
            "Give a filter (queue, actor, error_class, tenant_id, since, until) or all: true.",
            details=(ErrorDetail(field="all", message="required when no filter is given"),),
        )
    return f


def age_text(seconds: float | None) -> str:
    """ "42s", "3m 5s", "2h 10m": how long a message has waited, for people."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def when_text(at: datetime | None) -> str:
    return "–" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")
