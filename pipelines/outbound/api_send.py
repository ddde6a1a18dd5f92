"""validate and persist for API sends: a tenant system's message to a person, once per key."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection

from engine.errors import InvalidPayloadError, NotFoundError, PermanentError
from engine.events import ChannelType
from engine.phone import normalize_phone
from engine.store import api_clients as store
from engine.store.conversations import find_or_create_ticket, insert_ticket_event, upsert_contact
from engine.store.outbox import insert_outbox
from pipelines.inbound.enrich import contact_lock_key
from pipelines.outbound.request import SendRequest, record_send

MAX_BIGINT = 9_223_372_036_854_775_807
_PHONE_CHANNELS = (ChannelType.WHATSAPP, ChannelType.SMS)


class Recipient(BaseModel):
    """Who an API send goes to: exactly one of a phone number, a contact or a channel address
    (Telegram chat id, Messenger/Instagram user id, e-mail address, WhatsApp id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: str | None = Field(
        default=None, min_length=3, max_length=32, pattern=r"^\+?[0-9 ().-]+$"
    )
    contact_id: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    external_id: str | None = Field(
        default=None, min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Recipient:
        given = [v for v in (self.phone, self.contact_id, self.external_id) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of phone, contact_id or external_id")
        return self


class ApiSendRequest(SendRequest):
    """A tenant system's send: a message to a person on a channel, under its own unique key."""

    channel_id: int = Field(ge=1, le=MAX_BIGINT)
    to: Recipient
    # The caller's id for this message: a retry with the same key never sends twice.
    external_key: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    quoted_message_id: int | None = Field(default=None, ge=1, le=MAX_BIGINT)

    @model_validator(mode="after")
    def _no_nul(self) -> ApiSendRequest:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the insert.
        texts = [self.body, self.filename]
        if self.template is not None:
            texts += [self.template.name, self.template.language, *self.template.parameters]
        if any(t is not None and "\x00" in t for t in texts):
            raise ValueError("text must not contain NUL characters")
        return self

    def fingerprint(self) -> str:
        """SHA-256 of what is sent to whom, so a reused key with another payload is caught."""
        to = self.to.model_dump(exclude_none=True)
        if self.to.phone is not None:
            to["phone"] = normalize_phone(self.to.phone) or self.to.phone
        content = self.model_dump(mode="json", exclude={"to", "external_key"})
        canonical = json.dumps({"to": to, **content}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class RecipientError(InvalidPayloadError):
    """The recipient cannot be reached on that channel; `field` names the part of `to`."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class ExternalKeyConflictError(PermanentError):
    """The external key was used before for a different message."""

    def __init__(self, message_id: int) -> None:
        super().__init__(f"external_key already used by message {message_id}")
        self.message_id = message_id


class ApiSend(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: int
    ticket_id: int
    contact_id: int
    outbox_ids: list[int]
    replayed: bool  # True: the key was sent before; nothing new was recorded or must be sent


def record_api_send(
    conn: Connection,
    *,
    tenant_id: int,
    api_client_id: int | None,
    user_id: int | None,
    request: ApiSendRequest,
) -> ApiSend:
    """validate + persist for an API send: find or create the contact and its live ticket on the
    channel, then record the message `pending` under its external key.

    Idempotent by key: a key seen before returns that message (`replayed`); with a different
    payload it raises ExternalKeyConflictError. Raises NotFoundError (channel, contact) and
    RecipientError. A concurrent send under the same key makes the commit fail with
    IntegrityError; the caller retries once to get the winner's message.
    """
    fingerprint = request.fingerprint()
    existing = store.get_api_message(conn, tenant_id=tenant_id, external_key=request.external_key)
    if existing is not None:
        if existing.request_sha256 not in (None, fingerprint):
            raise ExternalKeyConflictError(existing.id)
        return ApiSend(
            message_id=existing.id,
            ticket_id=existing.ticket_id,
            contact_id=existing.contact_id,
            outbox_ids=[],
            replayed=True,
        )
    kind = store.get_channel_type(conn, tenant_id=tenant_id, channel_id=request.channel_id)
    if kind is None:
        raise NotFoundError("Channel not found.")
    contact_id = _recipient_contact(conn, tenant_id, ChannelType(kind), request.to)
    ticket = find_or_create_ticket(
        conn, tenant_id=tenant_id, channel_id=request.channel_id, contact_id=contact_id
    )
    outbox_ids = []
    if ticket.created:
        insert_ticket_event(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket.id,
            type="created",
            data={"status": "pending", "protocol": ticket.protocol, "source": "api"},
        )
        payload = {"ticket_id": ticket.id, "contact_id": contact_id, "status": "pending"}
        outbox_ids.append(
            insert_outbox(conn, tenant_id=tenant_id, topic="ticket.created", payload=payload)
        )
    recorded = record_send(
        conn,
        tenant_id=tenant_id,
        ticket_id=ticket.id,
        request=request,
        user_id=user_id,
        send_type="api",
        event_data={"api_client_id": api_client_id, "request_sha256": fingerprint},
    )
    store.mark_api_message(
        conn,
        tenant_id=tenant_id,
        message_id=recorded.message_id,
        api_client_id=api_client_id,
        external_key=request.external_key,
    )
    return ApiSend(
        message_id=recorded.message_id,
        ticket_id=ticket.id,
        contact_id=contact_id,
        outbox_ids=[*outbox_ids, *recorded.outbox_ids],
        replayed=False,
    )


def _recipient_contact(conn: Connection, tenant_id: int, kind: ChannelType, to: Recipient) -> int:
    """The contact `to` names, created with its channel identity when new.

    Identities are keyed as the inbound pipeline keys them (E.164 on phone channels, the
    lower-cased address on e-mail, the provider id elsewhere), under the same per-person lock,
    so a person who writes in later lands on the same contact and ticket.
    """
    if to.contact_id is not None:
        return _known_contact(conn, tenant_id, kind, to.contact_id)
    raw = to.phone if to.phone is not None else to.external_id
    assert raw is not None
    field = "to.phone" if to.phone is not None else "to.external_id"
    phone: str | None = None
    email: str | None = None
    if kind in _PHONE_CHANNELS:
        phone = normalize_phone(raw)
        if phone is None:
            raise RecipientError("not a phone number this channel can reach", field=field)
        key = phone
    elif to.phone is not None:
        raise RecipientError(f"a {kind} channel does not reach phone numbers", field=field)
    elif kind is ChannelType.EMAIL:
        key = email = raw.strip().lower()
        if "@" not in key[1:]:
            raise RecipientError("not an e-mail address", field=field)
    else:
        key = raw.strip()
        if not key:
            raise RecipientError("must not be blank", field=field)
    return _upsert_person(conn, tenant_id, kind, key=key, phone=phone, email=email)


def _known_contact(conn: Connection, tenant_id: int, kind: ChannelType, contact_id: int) -> int:
    found = store.get_contact_address(
        conn, tenant_id=tenant_id, contact_id=contact_id, channel_type=kind
    )
    if found is None:
        raise NotFoundError("Contact not found.")
    if found.external_id is not None:
        return found.contact_id
    # Known by phone but never seen on this channel: the phone is their address here.
    phone = found.phone
    if kind in _PHONE_CHANNELS and phone is not None:
        linked = _upsert_person(conn, tenant_id, kind, key=phone, phone=phone)
        if linked == contact_id:
            return contact_id
    raise RecipientError("this contact has no address on that channel", field="to.contact_id")


def _upsert_person(
    conn: Connection,
    tenant_id: int,
    kind: ChannelType,
    *,
    key: str,
    phone: str | None,
    email: str | None = None,
) -> int:
    store.lock_person(conn, contact_lock_key(tenant_id, kind, key, phone))
    # WhatsApp addresses people by their number without the plus (the wa_id).
    external_id = key.lstrip("+") if kind is ChannelType.WHATSAPP else key
    ref = upsert_contact(
        conn,
        tenant_id=tenant_id,
        channel_type=kind,
        identity_key=key,
        external_id=external_id,
        name=None,
        phone=phone,
        email=email,
    )
    return ref.id
