"""Data protection: export everything held about a contact, or erase it (admins only)."""

from __future__ import annotations

import asyncio

from pydantic import StrictBool

from actors.wiring import media_storage
from api.errors import ApiError, ErrorDetail
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import Frozen
from engine.privacy.erase import erase_contact
from engine.privacy.export import ContactExport, export_contact
from engine.privacy.redaction import delete_media_files

router = ApiRouter("privacy")


class EraseIn(Frozen):
    """`confirm` must be true: erasure cannot be undone."""

    confirm: StrictBool


class ErasureOut(Frozen):
    contact_id: int
    counts: dict[str, int]  # rows changed per table (0 everywhere on a repeated erasure)
    media_files_deleted: int


@router.get(
    "/api/v1/contacts/{id}/export",
    Permission.CONTACTS_PRIVACY,
    response=ContactExport,
    summary="Export everything held about a contact",
)
async def export_contact_endpoint(call: Call[NoBody, NoQuery]) -> ContactExport:
    """Profile, identities, custom fields, tags, tickets and their events, messages with their
    statuses, reactions and media references, campaign participation and audit entries, as
    one JSON document (LGPD / GDPR access request). The export itself is audited."""
    async with call.tx() as conn:
        document = await conn.run_sync(
            lambda c: export_contact(
                c, tenant_id=call.tenant_id, contact_id=call.id(), user_id=call.principal.user_id
            )
        )
    if document is None:
        raise not_found("Contact")
    return document


@router.post(
    "/api/v1/contacts/{id}/erase",
    Permission.CONTACTS_PRIVACY,
    body=EraseIn,
    response=ErasureOut,
    summary="Erase a contact's personal data",
)
async def erase_contact_endpoint(call: Call[EraseIn, NoQuery]) -> ErasureOut:
    """Irreversible: name, phone, e-mail, identities, custom fields, tags, message contents,
    raw webhook bodies and queued payloads mentioning the contact are removed, downloaded
    media files deleted. Tickets and message ids stay for statistics; an audit entry without
    personal data records the erasure. Repeating it changes nothing."""
    if not call.body.confirm:
        raise ApiError(
            422,
            "invalid_request",
            "Invalid request body: confirm (erasure cannot be undone; send true).",
            details=(ErrorDetail(field="confirm", message="must be true"),),
        )
    async with call.tx() as conn:
        result = await conn.run_sync(
            lambda c: erase_contact(
                c, tenant_id=call.tenant_id, contact_id=call.id(), user_id=call.principal.user_id
            )
        )
    if result is None:
        raise not_found("Contact")
    storage = media_storage(call.deps.settings)
    deleted = await asyncio.to_thread(delete_media_files, storage, result.media_uris)
    return ErasureOut(
        contact_id=result.contact_id, counts=result.counts, media_files_deleted=deleted
    )
