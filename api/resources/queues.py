"""Queues: where tickets wait, how they are handed out, and which users work each one."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy.exc import IntegrityError

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
    conflict_on,
    found,
    page_of,
    unknown_ids,
)
from engine.queries.queues import Distribution, QueueView, get_queue, list_queues
from engine.queries.user_accounts import get_known_user_ids
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


class QueueIn(Frozen):
    name: Name
    color: Color | None = None
    greeting: Greeting | None = None
    distribution: Distribution = "none"


class QueuePatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    color: Color | None = None
    greeting: Greeting | None = None
    distribution: Annotated[Distribution | None, NotNull] = None


class QueueMembersIn(Frozen):
    user_ids: IdList


@router.get(
    "/api/v1/queues",
    Permission.QUEUES_READ,
    query=QueueListQuery,
    response=Page[QueueView],
    summary="List queues",
)
async def list_queues_endpoint(call: Call[NoBody, QueueListQuery]) -> Page[QueueView]:
    """The tenant's queues by id, each with its members; `search` matches part of the name."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_queues(
            conn, call.tenant_id, search=q.search, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[QueueView], rows, q.limit)


@router.get(
    "/api/v1/queues/{id}", Permission.QUEUES_READ, response=QueueView, summary="Get a queue"
)
async def get_queue_endpoint(call: Call[NoBody, NoQuery]) -> QueueView:
    async with call.tx() as conn:
        return found(await get_queue(conn, call.tenant_id, call.id()), "Queue")


@router.post(
    "/api/v1/queues",
    Permission.QUEUES_MANAGE,
    body=QueueIn,
    response=QueueView,
    status=201,
    summary="Create a queue",
)
async def create_queue(call: Call[QueueIn, NoQuery]) -> QueueView:
    """409 when the tenant already has a queue of that name."""
    b = call.body
    try:
        async with call.tx() as conn:
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
            return found(await get_queue(conn, call.tenant_id, queue_id), "Queue")
    except IntegrityError as exc:
        raise conflict_on(exc, _TAKEN) from None


@router.patch(
    "/api/v1/queues/{id}",
    Permission.QUEUES_MANAGE,
    body=QueuePatch,
    response=QueueView,
    summary="Change a queue",
)
async def update_queue_endpoint(call: Call[QueuePatch, NoQuery]) -> QueueView:
    """Only the fields sent change; `color` or `greeting` null clears it."""
    changes = changes_of(call.body)
    try:
        async with call.tx() as conn:
            updated = await conn.run_sync(
                lambda c: update_queue(
                    c, tenant_id=call.tenant_id, queue_id=call.id(), changes=changes
                )
            )
            if not updated:
                raise not_found("Queue")
            return found(await get_queue(conn, call.tenant_id, call.id()), "Queue")
    except IntegrityError as exc:
        raise conflict_on(exc, _TAKEN) from None


@router.put(
    "/api/v1/queues/{id}/members",
    Permission.QUEUES_MANAGE,
    body=QueueMembersIn,
    response=QueueView,
    summary="Set a queue's members",
)
async def set_queue_members(call: Call[QueueMembersIn, NoQuery]) -> QueueView:
    """Replaces the whole membership; 422 naming each id that is not a user of this tenant."""
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
        return found(await get_queue(conn, call.tenant_id, call.id()), "Queue")


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
