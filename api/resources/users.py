"""Users of the tenant: who may sign in, with which role, and ending their sessions."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.errors import ApiError
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Clean,
    Email,
    Frozen,
    ListQuery,
    LongName,
    NotNull,
    Page,
    Strip,
    changes_of,
    found,
    page_of,
)
from api.tickets.common import distribute_now
from engine.queries.user_accounts import UserView, get_user, list_users
from engine.routing.distribution import distribute_freed
from engine.security import BCRYPT_MAX_BYTES, Role, hash_password
from engine.store.auth import end_sessions
from engine.store.tenants import insert_user
from engine.store.user_accounts import (
    delete_user,
    lock_admin_ids,
    lock_user,
    update_user,
)

router = ApiRouter("users")

MIN_PASSWORD_CHARS = 10
MAX_OPEN_TICKETS = 10_000
EMAIL_TAKEN = {"users_email_key": "A user with this e-mail already exists."}


def _bcrypt_sized(value: str) -> str:
    if len(value.encode()) > BCRYPT_MAX_BYTES:  # bcrypt would silently ignore the rest
        raise ValueError(f"must be at most {BCRYPT_MAX_BYTES} bytes")
    return value


Password = Annotated[
    str, Field(min_length=MIN_PASSWORD_CHARS), Clean, AfterValidator(_bcrypt_sized)
]
MaxOpenTickets = Annotated[int, Field(ge=0, le=MAX_OPEN_TICKETS)]


class UserListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None
    role: Role | None = None


class UserIn(Frozen):
    name: LongName
    email: Email
    password: Password = Field(repr=False)
    role: Role
    max_open_tickets: MaxOpenTickets | None = None


class UserPatch(Frozen):
    name: Annotated[LongName | None, NotNull] = None
    role: Annotated[Role | None, NotNull] = None
    max_open_tickets: MaxOpenTickets | None = None
    online: Annotated[bool | None, NotNull] = None


@router.get(
    "/api/v1/users",
    Permission.USERS_READ,
    query=UserListQuery,
    response=Page[UserView],
    summary="List users",
)
async def list_users_endpoint(call: Call[NoBody, UserListQuery]) -> Page[UserView]:
    """The tenant's users by id; `search` matches name or e-mail, `role` filters."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_users(
            conn,
            call.tenant_id,
            search=q.search,
            role=q.role,
            after_id=q.cursor or 0,
            limit=q.limit + 1,
        )
    return page_of(Page[UserView], rows, q.limit)


@router.get("/api/v1/users/{id}", Permission.USERS_READ, response=UserView, summary="Get a user")
async def get_user_endpoint(call: Call[NoBody, NoQuery]) -> UserView:
    async with call.tx() as conn:
        return found(await get_user(conn, call.tenant_id, call.id()), "User")


@router.post(
    "/api/v1/users",
    Permission.USERS_MANAGE,
    body=UserIn,
    response=UserView,
    status=201,
    summary="Create a user",
)
async def create_user(call: Call[UserIn, NoQuery]) -> UserView:
    """Only a super user may create another; an e-mail is unique on the whole platform (409)."""
    b = call.body
    _may_grant(call.principal, b.role)
    password_hash = await run_in_threadpool(hash_password, b.password)
    async with call.tx(conflicts=EMAIL_TAKEN) as conn:
        user_id = await conn.run_sync(
            lambda c: insert_user(
                c,
                tenant_id=call.tenant_id,
                name=b.name,
                email=b.email,
                password_hash=password_hash,
                role=b.role,
            )
        )
        if b.max_open_tickets is not None:
            changes = {"max_open_tickets": b.max_open_tickets}
            await conn.run_sync(
                lambda c: update_user(c, tenant_id=call.tenant_id, user_id=user_id, changes=changes)
            )
        return found(await get_user(conn, call.tenant_id, user_id), "User")


@router.patch(
    "/api/v1/users/{id}",
    Permission.USERS_MANAGE,
    body=UserPatch,
    response=UserView,
    summary="Change a user",
)
async def update_user_endpoint(call: Call[UserPatch, NoQuery]) -> UserView:
    """A role change ends the user's sessions (their tokens carry the old role). Going online
    or a new `max_open_tickets` hands them tickets waiting in their queues.

    409 when it would leave the tenant without an admin; 403 when it grants or touches `super`
    and the caller is not super.
    """
    changes = changes_of(call.body)
    new_role = call.body.role
    async with call.tx() as conn:
        admins = await conn.run_sync(lambda c: lock_admin_ids(c, tenant_id=call.tenant_id))
        role = await conn.run_sync(
            lambda c: lock_user(c, tenant_id=call.tenant_id, user_id=call.id())
        )
        if role is None:
            raise not_found("User")
        _may_manage(call.principal, role)
        if new_role is not None:
            _may_grant(call.principal, new_role)
            if new_role == role:
                del changes["role"]  # not a change: keep the user's sessions
            elif new_role not in ("admin", "super") and admins == {call.id()}:
                raise ApiError(409, "conflict", "The tenant must keep at least one admin.")
        await conn.run_sync(
            lambda c: update_user(c, tenant_id=call.tenant_id, user_id=call.id(), changes=changes)
        )
        user = found(await get_user(conn, call.tenant_id, call.id()), "User")
    if call.body.online or "max_open_tickets" in changes:
        await _fill_capacity(call, call.id())
    return user


class PresenceIn(Frozen):
    online: StrictBool = Field(description="false: no new tickets are distributed to you.")


@router.put(
    "/api/v1/me/presence",
    Permission.SELF,
    body=PresenceIn,
    response=UserView,
    summary="Go online or offline",
)
async def set_presence(call: Call[PresenceIn, NoQuery]) -> UserView:
    """Only online agents receive tickets from their queues' distribution. Going online hands
    you tickets waiting in your queues, up to your capacity."""
    user_id, online = call.principal.user_id, call.body.online
    async with call.tx() as conn:
        await conn.run_sync(
            lambda c: update_user(
                c, tenant_id=call.tenant_id, user_id=user_id, changes={"online": online}
            )
        )
        user = found(await get_user(conn, call.tenant_id, user_id), "User")
    if online:
        await _fill_capacity(call, user_id)
    return user


async def _fill_capacity(call: Call[Any, Any], user_id: int) -> None:
    await distribute_now(
        call, lambda c: distribute_freed(c, tenant_id=call.tenant_id, user_id=user_id)
    )


@router.delete("/api/v1/users/{id}", Permission.USERS_MANAGE, status=204, summary="Delete a user")
async def delete_user_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Their tickets become unassigned. Nobody deletes their own account here (409)."""
    if call.id() == call.principal.user_id:
        raise ApiError(409, "conflict", "You cannot delete your own account.")
    async with call.tx() as conn:
        admins = await conn.run_sync(lambda c: lock_admin_ids(c, tenant_id=call.tenant_id))
        role = await conn.run_sync(
            lambda c: lock_user(c, tenant_id=call.tenant_id, user_id=call.id())
        )
        if role is None:
            raise not_found("User")
        _may_manage(call.principal, role)
        if admins == {call.id()}:
            raise ApiError(409, "conflict", "The tenant must keep at least one admin.")
        await conn.run_sync(lambda c: delete_user(c, tenant_id=call.tenant_id, user_id=call.id()))


@router.post(
    "/api/v1/users/{id}/revoke-sessions",
    Permission.USERS_MANAGE,
    status=204,
    summary="Sign a user out everywhere",
)
async def revoke_sessions(call: Call[NoBody, NoQuery]) -> None:
    """Every access and refresh token issued to the user so far stops working at once."""
    async with call.tx() as conn:
        role = await conn.run_sync(
            lambda c: lock_user(c, tenant_id=call.tenant_id, user_id=call.id())
        )
        if role is None:
            raise not_found("User")
        _may_manage(call.principal, role)
        await conn.run_sync(lambda c: end_sessions(c, tenant_id=call.tenant_id, user_id=call.id()))


def _may_grant(principal: Principal, role: Role) -> None:
    if role == "super" and principal.role != "super":
        raise ApiError(403, "forbidden", "Only a super user may grant the super role.")


def _may_manage(principal: Principal, target_role: Role) -> None:
    if target_role == "super" and principal.role != "super":
        raise ApiError(403, "forbidden", "Only a super user may change a super user.")
