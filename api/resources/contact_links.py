"""What a contact is linked to: its tags, its wallet owner, and merging a duplicate into it."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from actors.deliver import publish_outbox
from api.errors import ApiError, constraint_of, invalid_field
from api.framework import ApiRouter, Call, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Frozen,
    IdList,
    RowId,
    found,
    unknown_ids,
)
from engine.phone import normalize_phone
from engine.queries.contacts import ContactDetail, get_contact_detail
from engine.queries.tags import get_known_tag_ids
from engine.queries.user_accounts import get_known_user_ids
from engine.store.contact_merge import (
    MergeOutcome,
    PersonKeys,
    get_person_keys,
    lock_merge_sides,
    lock_people,
    merge_contacts,
)
from engine.store.contacts import lock_contact, replace_contact_tags, set_wallet_owner
from pipelines.inbound.enrich import contact_lock_key

router = ApiRouter("contacts")

_PHONE_CHANNELS = ("whatsapp", "sms")


class ContactTagsIn(Frozen):
    tag_ids: IdList


class WalletIn(Frozen):
    user_id: RowId | None


class MergeIn(Frozen):
    from_contact_id: RowId


class MergeOut(Frozen):
    contact: ContactDetail
    moved_identities: int
    moved_ticket_ids: list[int]
    moved_messages: int
    closed_ticket_ids: list[int]  # the source's live tickets that clashed with the target's


@router.put(
    "/api/v1/contacts/{id}/tags",
    Permission.CONTACTS_WRITE,
    body=ContactTagsIn,
    response=ContactDetail,
    summary="Set a contact's tags",
)
async def set_contact_tags(call: Call[ContactTagsIn, NoQuery]) -> ContactDetail:
    """Replaces the whole set (an empty list removes all); 422 naming each unknown tag id."""
    tag_ids = call.body.tag_ids
    async with call.tx() as conn:
        if not await conn.run_sync(
            lambda c: lock_contact(c, tenant_id=call.tenant_id, contact_id=call.id())
        ):
            raise not_found("Contact")
        bad = unknown_ids(
            "tag_ids", tag_ids, await get_known_tag_ids(conn, call.tenant_id, tag_ids), "tag"
        )
        if bad is not None:
            raise bad
        await conn.run_sync(
            lambda c: replace_contact_tags(
                c, tenant_id=call.tenant_id, contact_id=call.id(), tag_ids=tag_ids
            )
        )
        return found(await get_contact_detail(conn, call.tenant_id, call.id()), "Contact")


@router.put(
    "/api/v1/contacts/{id}/wallet",
    Permission.CONTACTS_WRITE,
    body=WalletIn,
    response=ContactDetail,
    summary="Set a contact's wallet owner",
)
async def set_contact_wallet(call: Call[WalletIn, NoQuery]) -> ContactDetail:
    """The user whose wallet holds the contact (their tickets go to them); null: nobody."""
    user_id = call.body.user_id
    async with call.tx() as conn:
        if not await conn.run_sync(
            lambda c: lock_contact(c, tenant_id=call.tenant_id, contact_id=call.id())
        ):
            raise not_found("Contact")
        if user_id is not None and not await get_known_user_ids(conn, call.tenant_id, [user_id]):
            raise invalid_field("user_id", f"no user {user_id} in this tenant")
        await conn.run_sync(
            lambda c: set_wallet_owner(
                c, tenant_id=call.tenant_id, contact_id=call.id(), user_id=user_id
            )
        )
        return found(await get_contact_detail(conn, call.tenant_id, call.id()), "Contact")


@router.post(
    "/api/v1/contacts/{id}/merge",
    Permission.CONTACTS_MERGE,
    body=MergeIn,
    response=MergeOut,
    summary="Merge a duplicate contact into this one",
)
async def merge_contact(call: Call[MergeIn, NoQuery]) -> MergeOut:
    """Moves the other contact's identities, tickets, messages, tags, custom fields (this
    contact's win on a clash) and wallet here, in one transaction. Where both have a live
    ticket on the same channel, the other's is closed (recorded on the ticket). The other
    contact is kept, marked `merged_into_id`, without its phone, which this contact takes
    over if it has none. 409 when either was merged before."""
    target_id, source_id = call.id(), call.body.from_contact_id
    if source_id == target_id:
        raise invalid_field("from_contact_id", "must be another contact")
    try:
        async with call.tx() as conn:
            # The inbound pipeline's per-person locks first, row locks second: a batch of
            # these people finishes before the merge starts and none starts until it ends.
            keys = await conn.run_sync(
                lambda c: get_person_keys(
                    c, tenant_id=call.tenant_id, contact_ids=[target_id, source_id]
                )
            )
            await conn.run_sync(lambda c: lock_people(c, _lock_keys(call.tenant_id, keys)))
            sides = await conn.run_sync(
                lambda c: lock_merge_sides(
                    c, tenant_id=call.tenant_id, contact_ids=[target_id, source_id]
                )
            )
            target = found(sides.get(target_id), "Contact")
            source = found(sides.get(source_id), "Contact")
            for side in (target, source):
                if side.merged_into_id is not None:
                    raise ApiError(
                        409,
                        "conflict",
                        f"Contact {side.id} was already merged into {side.merged_into_id}.",
                    )
            if target.is_group != source.is_group:
                raise ApiError(409, "conflict", "A group and a person cannot be merged.")
            outcome: MergeOutcome = await conn.run_sync(
                lambda c: merge_contacts(
                    c,
                    tenant_id=call.tenant_id,
                    target=target,
                    source=source,
                    user_id=call.principal.user_id,
                )
            )
            contact = found(await get_contact_detail(conn, call.tenant_id, target_id), "Contact")
    except IntegrityError as exc:
        if constraint_of(exc) != "tickets_one_live":
            raise
        # Only a ticket reopened concurrently could make two live tickets; nothing was changed.
        raise ApiError(
            409, "conflict", "A ticket of these contacts changed meanwhile; try again."
        ) from None
    # After commit: a lost enqueue leaves the event for the outbox sweeper, never lost.
    await asyncio.to_thread(publish_outbox.send, [outcome.outbox_id])
    return MergeOut(
        contact=contact,
        moved_identities=outcome.moved_identities,
        moved_ticket_ids=list(outcome.moved_tickets),
        moved_messages=outcome.moved_messages,
        closed_ticket_ids=list(outcome.closed_ticket_ids),
    )


def _lock_keys(tenant_id: int, keys: PersonKeys) -> list[int]:
    """The advisory lock keys the inbound pipeline uses for these people."""
    locks = [contact_lock_key(tenant_id, "", "", phone) for phone in keys.phones]
    for channel_type, identity_key in keys.identities:
        phone = identity_key if channel_type in _PHONE_CHANNELS else None
        if phone is not None and normalize_phone(phone) != phone:
            phone = None
        locks.append(contact_lock_key(tenant_id, channel_type, identity_key, phone))
    return locks
