"""SLA policies (admins) and the breaches the scheduler records against them (supervisors)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import ApiError, ErrorDetail
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Frozen,
    ListQuery,
    Name,
    NotNull,
    Page,
    RowId,
    changes_of,
    found,
    page_of,
)
from engine.queries.common import Instant
from engine.queries.sla import (
    SlaEventView,
    SlaPolicyView,
    get_existing_refs,
    get_sla_policy,
    list_sla_events,
    list_sla_policies,
)
from engine.store.sla import delete_policy, insert_policy, update_policy

router = ApiRouter("sla")

MAX_TARGET_S = 366 * 24 * 3600
TARGETS = ("first_response_s", "next_response_s", "resolution_s")
# The policy's references and the table each must exist in, within the tenant.
REFS = {
    "queue_id": "queue",
    "tag_id": "tag",
    "escalate_to_queue_id": "queue",
    "escalate_to_user_id": "user",
}
_TAKEN = {"sla_policies_tenant_id_name_key": "An SLA policy with this name already exists."}

Seconds = Annotated[int, Field(ge=1, le=MAX_TARGET_S)]


class PolicyIn(Frozen):
    """Targets in seconds (at least one); attached to a queue, a tag, or neither (every ticket)."""

    name: Name
    queue_id: RowId | None = None
    tag_id: RowId | None = None
    first_response_s: Seconds | None = None
    next_response_s: Seconds | None = None
    resolution_s: Seconds | None = None
    business_hours_only: StrictBool = Field(
        default=True, description="Clocks run only within the queue's (else tenant's) hours."
    )
    escalate_to_queue_id: RowId | None = Field(
        default=None, description="On a breach, move the ticket to this queue and distribute it."
    )
    escalate_to_user_id: RowId | None = Field(
        default=None, description="On a breach, reassign the ticket to this user (first)."
    )


class PolicyPatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    queue_id: RowId | None = None
    tag_id: RowId | None = None
    first_response_s: Seconds | None = None
    next_response_s: Seconds | None = None
    resolution_s: Seconds | None = None
    business_hours_only: Annotated[StrictBool | None, NotNull] = None
    escalate_to_queue_id: RowId | None = None
    escalate_to_user_id: RowId | None = None


class SlaEventQuery(ListQuery):
    ticket_id: RowId | None = None
    since: Instant | None = Field(default=None, description="Breaches recorded from then.")


def _invalid(fields: tuple[str, ...], message: str) -> ApiError:
    details = tuple(ErrorDetail(field=f, message=message) for f in fields)
    return ApiError(
        422, "invalid_request", f"Invalid request body: {', '.join(fields)}.", details=details
    )


async def _check(conn: AsyncConnection, tenant_id: int, policy: dict[str, Any]) -> None:
    """422 for a policy without targets, on both a queue and a tag, or naming missing rows."""
    if all(policy.get(name) is None for name in TARGETS):
        raise _invalid(TARGETS, "give at least one target")
    if policy.get("queue_id") is not None and policy.get("tag_id") is not None:
        raise _invalid(("queue_id", "tag_id"), "attach the policy to a queue or a tag, not both")

    def ids(kind: str) -> list[int]:
        return [policy[f] for f, k in REFS.items() if k == kind and policy.get(f) is not None]

    existing = await get_existing_refs(
        conn, tenant_id, queue_ids=ids("queue"), tag_ids=ids("tag"), user_ids=ids("user")
    )
    for field, kind in REFS.items():
        value = policy.get(field)
        if value is not None and (kind, value) not in existing:
            raise _invalid((field,), f"no {kind} {value} in this tenant")


@router.get(
    "/api/v1/sla/policies",
    Permission.SLA_READ,
    query=ListQuery,
    response=Page[SlaPolicyView],
    summary="List SLA policies",
)
async def list_policies(call: Call[NoBody, ListQuery]) -> Page[SlaPolicyView]:
    q = call.query
    async with call.tx() as conn:
        rows = await list_sla_policies(
            conn, call.tenant_id, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[SlaPolicyView], rows, q.limit)


@router.get(
    "/api/v1/sla/policies/{id}",
    Permission.SLA_READ,
    response=SlaPolicyView,
    summary="Get an SLA policy",
)
async def get_policy(call: Call[NoBody, NoQuery]) -> SlaPolicyView:
    async with call.tx() as conn:
        return found(await get_sla_policy(conn, call.tenant_id, call.id()), "SLA policy")


@router.post(
    "/api/v1/sla/policies",
    Permission.SLA_MANAGE,
    body=PolicyIn,
    response=SlaPolicyView,
    status=201,
    summary="Create an SLA policy",
)
async def create_policy(call: Call[PolicyIn, NoQuery]) -> SlaPolicyView:
    """422 naming the field: no target, both queue and tag, a queue, tag or user that is not
    the tenant's. 409 when the name is taken."""
    fields = call.body.model_dump()
    async with call.tx(conflicts=_TAKEN) as conn:
        await _check(conn, call.tenant_id, fields)
        policy_id = await conn.run_sync(
            lambda c: insert_policy(c, tenant_id=call.tenant_id, fields=fields)
        )
        return found(await get_sla_policy(conn, call.tenant_id, policy_id), "SLA policy")


@router.patch(
    "/api/v1/sla/policies/{id}",
    Permission.SLA_MANAGE,
    body=PolicyPatch,
    response=SlaPolicyView,
    summary="Change an SLA policy",
)
async def update_policy_endpoint(call: Call[PolicyPatch, NoQuery]) -> SlaPolicyView:
    """Only the fields sent change (null clears); the result is checked like a new policy."""
    changes = changes_of(call.body)
    async with call.tx(conflicts=_TAKEN) as conn:
        current = found(await get_sla_policy(conn, call.tenant_id, call.id()), "SLA policy")
        await _check(conn, call.tenant_id, {**current.model_dump(), **changes})
        await conn.run_sync(
            lambda c: update_policy(
                c, tenant_id=call.tenant_id, policy_id=call.id(), changes=changes
            )
        )
        return found(await get_sla_policy(conn, call.tenant_id, call.id()), "SLA policy")


@router.delete(
    "/api/v1/sla/policies/{id}",
    Permission.SLA_MANAGE,
    status=204,
    summary="Delete an SLA policy",
)
async def delete_policy_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Its recorded breaches go with it."""
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: delete_policy(c, tenant_id=call.tenant_id, policy_id=call.id())
        )
    if not deleted:
        raise not_found("SLA policy")


@router.get(
    "/api/v1/sla/events",
    Permission.SLA_READ,
    query=SlaEventQuery,
    response=Page[SlaEventView],
    summary="List SLA breaches",
)
async def list_events(call: Call[NoBody, SlaEventQuery]) -> Page[SlaEventView]:
    """Breaches in the order they were recorded; filter by `ticket_id` and `since`."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_sla_events(
            conn,
            call.tenant_id,
            ticket_id=q.ticket_id,
            since=q.since,
            after_id=q.cursor or 0,
            limit=q.limit + 1,
        )
    return page_of(Page[SlaEventView], rows, q.limit)
