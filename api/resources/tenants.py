"""Tenants: the platform operator (role super) creates, renames and suspends them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, conflict_on
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
    found,
    page_of,
)
from api.resources.users import EMAIL_TAKEN, Password
from engine.db import async_system_tx
from engine.queries.tenants import TenantStatus, TenantView, get_tenant, list_tenants
from engine.queries.user_accounts import UserView, get_user
from engine.security import hash_password
from engine.settings_registry import TimeZone
from engine.store.tenants import insert_tenant, insert_user, update_tenant

router = ApiRouter("tenants")


class TenantListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None
    status: TenantStatus | None = None


class FirstAdminIn(Frozen):
    name: LongName
    email: Email
    password: Password = Field(repr=False)


class TenantIn(Frozen):
    name: LongName
    time_zone: TimeZone = "UTC"
    admin: FirstAdminIn


class TenantPatch(Frozen):
    name: Annotated[LongName | None, NotNull] = None
    status: Annotated[TenantStatus | None, NotNull] = None
    time_zone: Annotated[TimeZone | None, NotNull] = None


class TenantCreated(Frozen):
    tenant: TenantView
    admin: UserView


# Cross-tenant by nature: these handlers use system-scoped transactions, and only these.
@router.get(
    "/api/v1/tenants",
    Permission.TENANTS_MANAGE,
    query=TenantListQuery,
    response=Page[TenantView],
    summary="List tenants",
)
async def list_tenants_endpoint(call: Call[NoBody, TenantListQuery]) -> Page[TenantView]:
    """Every tenant by id; `search` matches part of the name, `status` filters."""
    q = call.query
    async with async_system_tx(call.deps.db) as conn:
        rows = await list_tenants(
            conn, search=q.search, status=q.status, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[TenantView], rows, q.limit)


@router.get(
    "/api/v1/tenants/{id}", Permission.TENANTS_MANAGE, response=TenantView, summary="Get a tenant"
)
async def get_tenant_endpoint(call: Call[NoBody, NoQuery]) -> TenantView:
    async with async_system_tx(call.deps.db) as conn:
        return found(await get_tenant(conn, call.id()), "Tenant")


@router.post(
    "/api/v1/tenants",
    Permission.TENANTS_MANAGE,
    body=TenantIn,
    response=TenantCreated,
    status=201,
    summary="Create a tenant with its first admin",
)
async def create_tenant(call: Call[TenantIn, NoQuery]) -> TenantCreated:
    """Tenant and admin are created together or not at all (409 if the e-mail is taken)."""
    b = call.body
    password_hash = await run_in_threadpool(hash_password, b.admin.password)
    try:
        async with async_system_tx(call.deps.db) as conn:
            tenant_id = await conn.run_sync(
                lambda c: insert_tenant(c, name=b.name, time_zone=b.time_zone)
            )
            admin_id = await conn.run_sync(
                lambda c: insert_user(
                    c,
                    tenant_id=tenant_id,
                    name=b.admin.name,
                    email=b.admin.email,
                    password_hash=password_hash,
                    role="admin",
                )
            )
            tenant = found(await get_tenant(conn, tenant_id), "Tenant")
            admin = found(await get_user(conn, tenant_id, admin_id), "User")
    except IntegrityError as exc:
        raise conflict_on(exc, EMAIL_TAKEN) from None
    return TenantCreated(tenant=tenant, admin=admin)


@router.patch(
    "/api/v1/tenants/{id}",
    Permission.TENANTS_MANAGE,
    body=TenantPatch,
    response=TenantView,
    summary="Rename, suspend or reactivate a tenant",
)
async def update_tenant_endpoint(call: Call[TenantPatch, NoQuery]) -> TenantView:
    """Suspending ends every session of the tenant's users at their next request. Suspending
    your own tenant would lock you out too: 409."""
    b = call.body
    if b.status == "suspended" and call.id() == call.tenant_id:
        raise ApiError(409, "conflict", "You cannot suspend your own tenant.")
    async with async_system_tx(call.deps.db) as conn:
        updated = await conn.run_sync(
            lambda c: update_tenant(
                c, tenant_id=call.id(), name=b.name, status=b.status, time_zone=b.time_zone
            )
        )
        if not updated:
            raise not_found("Tenant")
        return found(await get_tenant(conn, call.id()), "Tenant")
