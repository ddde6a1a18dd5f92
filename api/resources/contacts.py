"""Contacts: list and search, the contact card, create, edit and delete."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from sqlalchemy.exc import IntegrityError

from api.errors import ApiError, ErrorDetail, constraint_of
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
    RowId,
    Strip,
    changes_of,
    found,
    page_of,
)
from engine.db import async_tenant_tx
from engine.phone import normalize_phone
from engine.queries.contacts import (
    ContactDetail,
    ContactSummary,
    get_contact_detail,
    get_contact_id_by_phone,
    list_contacts,
)
from engine.store.contacts import (
    contact_has_tickets,
    delete_contact,
    insert_contact,
    lock_contact,
    replace_custom_fields,
    update_contact,
)

router = ApiRouter("contacts")

MAX_CUSTOM_FIELDS = 50


def _e164(value: str) -> str:
    phone = normalize_phone(value)
    if phone is None:
        raise ValueError("must be a phone number with country code, e.g. +5511987654321")
    return phone


Phone = Annotated[str, Strip, Field(min_length=1, max_length=32), Clean, AfterValidator(_e164)]
FieldName = Annotated[str, Strip, Field(min_length=1, max_length=100), Clean]
FieldValue = Annotated[str, Field(max_length=1000), Clean]
CustomFields = Annotated[dict[FieldName, FieldValue], Field(max_length=MAX_CUSTOM_FIELDS)]


class ContactListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None
    tag_id: RowId | None = None
    opted_out: bool | None = None


class ContactIn(Frozen):
    name: LongName
    phone: Phone | None = None
    email: Email | None = None
    custom_fields: CustomFields = {}


class ContactPatch(Frozen):
    """`custom_fields` replaces the whole map: names left out are removed."""

    name: Annotated[LongName | None, NotNull] = None
    email: Email | None = None
    custom_fields: Annotated[CustomFields | None, NotNull] = None
    opted_out: Annotated[bool | None, NotNull] = None


@router.get(
    "/api/v1/contacts",
    Permission.CONTACTS_READ,
    query=ContactListQuery,
    response=Page[ContactSummary],
    summary="List contacts",
)
async def list_contacts_endpoint(call: Call[NoBody, ContactListQuery]) -> Page[ContactSummary]:
    """Newest first; `search` matches part of the name or e-mail or the phone's digits;
    filter by `tag_id` and `opted_out`. Contacts merged into another are left out."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_contacts(
            conn,
            call.tenant_id,
            search=q.search,
            tag_id=q.tag_id,
            opted_out=q.opted_out,
            before_id=q.cursor,
            limit=q.limit + 1,
        )
    return page_of(Page[ContactSummary], rows, q.limit)


@router.get(
    "/api/v1/contacts/{id}",
    Permission.CONTACTS_READ,
    response=ContactDetail,
    summary="Get a contact",
)
async def get_contact_endpoint(call: Call[NoBody, NoQuery]) -> ContactDetail:
    """The contact card: identities per channel, tags, custom fields and wallet owner. A merged
    contact still answers, with `merged_into_id` naming where everything went."""
    async with call.tx() as conn:
        return found(await get_contact_detail(conn, call.tenant_id, call.id()), "Contact")


@router.post(
    "/api/v1/contacts",
    Permission.CONTACTS_WRITE,
    body=ContactIn,
    response=ContactDetail,
    status=201,
    summary="Create a contact",
)
async def create_contact(call: Call[ContactIn, NoQuery]) -> ContactDetail:
    """The phone is stored in E.164 (422 if it is not a phone number); one contact per
    number, so a number already taken is a 409 naming the contact that has it."""
    b = call.body
    try:
        async with call.tx() as conn:
            if b.phone is not None:
                taken = await get_contact_id_by_phone(conn, call.tenant_id, b.phone)
                if taken is not None:
                    raise _phone_taken(taken)
            contact_id = await conn.run_sync(
                lambda c: insert_contact(
                    c, tenant_id=call.tenant_id, name=b.name, phone=b.phone, email=b.email
                )
            )
            if b.custom_fields:
                await conn.run_sync(
                    lambda c: replace_custom_fields(
                        c, tenant_id=call.tenant_id, contact_id=contact_id, fields=b.custom_fields
                    )
                )
            return found(await get_contact_detail(conn, call.tenant_id, contact_id), "Contact")
    except IntegrityError as exc:
        if constraint_of(exc) != "contacts_phone_key" or b.phone is None:
            raise
        # Created concurrently since our check: name the winner.
        async with async_tenant_tx(call.deps.db, call.tenant_id) as conn:
            taken = await get_contact_id_by_phone(conn, call.tenant_id, b.phone)
        raise _phone_taken(taken) from None


@router.patch(
    "/api/v1/contacts/{id}",
    Permission.CONTACTS_WRITE,
    body=ContactPatch,
    response=ContactDetail,
    summary="Change a contact",
)
async def update_contact_endpoint(call: Call[ContactPatch, NoQuery]) -> ContactDetail:
    """Only the fields sent change; `email: null` clears it."""
    changes = changes_of(call.body)
    fields = call.body.custom_fields
    changes.pop("custom_fields", None)
    async with call.tx() as conn:
        if not await conn.run_sync(
            lambda c: lock_contact(c, tenant_id=call.tenant_id, contact_id=call.id())
        ):
            raise not_found("Contact")
        await conn.run_sync(
            lambda c: update_contact(
                c, tenant_id=call.tenant_id, contact_id=call.id(), changes=changes
            )
        )
        if fields is not None:
            await conn.run_sync(
                lambda c: replace_custom_fields(
                    c, tenant_id=call.tenant_id, contact_id=call.id(), fields=fields
                )
            )
        return found(await get_contact_detail(conn, call.tenant_id, call.id()), "Contact")


@router.delete(
    "/api/v1/contacts/{id}", Permission.CONTACTS_WRITE, status=204, summary="Delete a contact"
)
async def delete_contact_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Only a contact without tickets (409 otherwise: deleting would erase conversations)."""
    async with call.tx() as conn:
        if not await conn.run_sync(
            lambda c: lock_contact(c, tenant_id=call.tenant_id, contact_id=call.id())
        ):
            raise not_found("Contact")
        if await conn.run_sync(
            lambda c: contact_has_tickets(c, tenant_id=call.tenant_id, contact_id=call.id())
        ):
            raise ApiError(409, "conflict", "The contact has tickets and cannot be deleted.")
        await conn.run_sync(
            lambda c: delete_contact(c, tenant_id=call.tenant_id, contact_id=call.id())
        )


def _phone_taken(contact_id: int | None) -> ApiError:
    who = f"contact {contact_id}" if contact_id is not None else "another contact"
    return ApiError(
        409,
        "conflict",
        f"This phone number already belongs to {who}.",
        details=(ErrorDetail(field="phone", message=f"taken by {who}"),),
    )
