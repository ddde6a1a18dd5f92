"""Queues: where tickets wait, how they are handed out, and which users work each one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Clean,
    Color,
    Frozen,
    IdList,
    ListQuery,
    Name,
    NotNull,
    Page,
    Strip,
    changes_of,
    found,
    page_of,
    unknown_ids,
)
from api.tickets.common import distribute_now
from engine.queries.queue_hours import get_queue_hours
from engine.queries.queues import Distribution, QueueView, get_queue, list_queues
from engine.queries.user_accounts import get_known_user_ids
from engine.routing.distribution import distribute_waiting
from engine.routing.queue_hours import set_queue_hours
from engine.settings_registry import BusinessHours
from engine.store.queues import (
    delete_queue,
    insert_queue,
    lock_queue,
    replace_queue_members,
    update_queue,
)

router = ApiRouter("queues")

Greeting = Annotated[str, Field(min_length=1, max_length=4096), Clean]
_TAKEN = {"queues_tenant_id_name_key": "A queue with this name already exists."}


class QueueListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None


HOURS_HELP = (
    "Opening hours of this queue (null: the tenant's `business_hours` setting applies): "
    "`time_zone`, `week` of up to two HH:MM intervals per weekday (00:00-24:00 is all day), "
    "`holidays` as YYYY-MM-DD."
)
DISTRIBUTION_HELP = (
    "none: pending for anyone in the queue; round_robin; least_loaded (fewest live tickets). "
    "Only online members below their max_open_tickets receive tickets."
)


class QueueIn(Frozen):
    name: Name
    color: Color | None = None
    greeting: Greeting | None = None
    distribution: Distribution = Field(default="none", description=DISTRIBUTION_HELP)
    business_hours: BusinessHours | None = Field(default=None, description=HOURS_HELP)


class QueuePatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    color: Color | None = None
    greeting: Greeting | None = None
    distribution: Annotated[Distribution | None, NotNull] = Field(
        default=None, description=DISTRIBUTION_HELP
    )
    business_hours: BusinessHours | None = Field(default=None, description=HOURS_HELP)


class QueueOut(QueueView):
    business_hours: BusinessHours | None = None


async def _with_hours(
    conn: AsyncConnection, tenant_id: int, queues: Sequence[QueueView]
) -> list[QueueOut]:
    hours = await get_queue_hours(conn, tenant_id, [q.id for q in queues])
    return [
        QueueOut.model_validate({**q.model_dump(), "business_hours": hours.get(q.id)})
        for q in queues
    ]


async def _queue_out(conn: AsyncConnection, tenant_id: int, queue_id: int) -> QueueOut:
    queue = found(await get_queue(conn, tenant_id, queue_id), "Queue")
    return (await _with_hours(conn, tenant_id, [queue]))[0]


async def _fill(call: Call[Any, Any], queue_id: int) -> None:
    """Tickets waiting in the queue go to its members now that it distributes or has more."""
    await distribute_now(
        call, lambda c: distribute_waiting(c, tenant_id=call.tenant_id, queue_id=queue_id)
    )


class QueueMembersIn(Frozen):
    user_ids: IdList


@router.get(
    "/api/v1/queues",
    Permission.QUEUES_READ,
    query=QueueListQuery,
    response=Page[QueueOut],
    summary="List queues",
)
async def list_queues_endpoint(call: Call[NoBody, QueueListQuery]) -> Page[QueueOut]:
    """The tenant's queues by id, each with its members; `search` matches part of the name."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_queues(
            conn, call.tenant_id, search=q.search, after_id=q.cursor or 0, limit=q.limit + 1
        )
        queues = await _with_hours(conn, call.tenant_id, rows)
    return page_of(Page[QueueOut], queues, q.limit)


@router.get("/api/v1/queues/{id}", Permission.QUEUES_READ, response=QueueOut, summary="Get a queue")
async def get_queue_endpoint(call: Call[NoBody, NoQuery]) -> QueueOut:
    async with call.tx() as conn:
        return await _queue_out(conn, call.tenant_id, call.id())


@router.post(
    "/api/v1/queues",
    Permission.QUEUES_MANAGE,
    body=QueueIn,
    response=QueueOut,
    status=201,
    summary="Create a queue",
)
async def create_queue(call: Call[QueueIn, NoQuery]) -> QueueOut:
    """409 when the tenant already has a queue of that name; 422 naming the field of invalid
    `business_hours` (unknown time zone, more than two intervals a day, overlaps)."""
    b = call.body
    async with call.tx(conflicts=_TAKEN) as conn:
        queue_id = await conn.run_sync(
            lambda c: insert_queue(
                c,
                tenant_id=call.tenant_id,
                name=b.name,
                color=b.color,
                greeting=b.greeting,
                distribution=b.distribution,
            )
        )
        if b.business_hours is not None:
            hours = b.business_hours
            await conn.run_sync(
                lambda c: set_queue_hours(
                    c, tenant_id=call.tenant_id, queue_id=queue_id, hours=hours
                )
            )
        return await _queue_out(conn, call.tenant_id, queue_id)


@router.patch(
    "/api/v1/queues/{id}",
    Permission.QUEUES_MANAGE,
    body=QueuePatch,
    response=QueueOut,
    summary="Change a queue",
)
async def update_queue_endpoint(call: Call[QueuePatch, NoQuery]) -> QueueOut:
    """Only the fields sent change; `color`, `greeting` or `business_hours` null clears it.

    A new `distribution` policy hands out the tickets already waiting in the queue.
    """
    changes = changes_of(call.body)
    new_hours = "business_hours" in changes
    changes.pop("business_hours", None)
    hours = call.body.business_hours
    async with call.tx(conflicts=_TAKEN) as conn:
        updated = await conn.run_sync(
            lambda c: update_queue(c, tenant_id=call.tenant_id, queue_id=call.id(), changes=changes)
        )
        if not updated:
            raise not_found("Queue")
        if new_hours:
            await conn.run_sync(
                lambda c: set_queue_hours(
                    c, tenant_id=call.tenant_id, queue_id=call.id(), hours=hours
                )
            )
        queue = await _queue_out(conn, call.tenant_id, call.id())
    if "distribution" in changes:
        await _fill(call, call.id())
    return queue


@router.put(
    "/api/v1/queues/{id}/members",
    Permission.QUEUES_MANAGE,
    body=QueueMembersIn,
    response=QueueOut,
    summary="Set a queue's members",
)
async def set_queue_members(call: Call[QueueMembersIn, NoQuery]) -> QueueOut:
    """Replaces the whole membership; 422 naming each id that is not a user of this tenant.

    New members who are online and have capacity receive the tickets waiting in the queue.
    """
    user_ids = call.body.user_ids
    async with call.tx() as conn:
        if not await conn.run_sync(
            lambda c: lock_queue(c, tenant_id=call.tenant_id, queue_id=call.id())
        ):
            raise not_found("Queue")
        known = await get_known_user_ids(conn, call.tenant_id, user_ids)
        bad = unknown_ids("user_ids", user_ids, known, "user")
        if bad is not None:
            raise bad
        await conn.run_sync(
            lambda c: replace_queue_members(
                c, tenant_id=call.tenant_id, queue_id=call.id(), user_ids=user_ids
            )
        )
        queue = await _queue_out(conn, call.tenant_id, call.id())
    await _fill(call, call.id())
    return queue


@router.delete(
    "/api/v1/queues/{id}", Permission.QUEUES_MANAGE, status=204, summary="Delete a queue"
)
async def delete_queue_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Its tickets stay, unqueued; channels routing to it fall back to no default queue."""
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: delete_queue(c, tenant_id=call.tenant_id, queue_id=call.id())
        )
    if not deleted:
        raise not_found("Queue")
