"""validate and persist for outbound: a send request becomes a `pending` message row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator
from sqlalchemy import Connection

from engine.errors import NotFoundError
from engine.events import MessageType, Template
from engine.store.conversations import insert_ticket_event
from engine.store.outbound import NewOutboundMessage, get_ticket_target, insert_outbound_message
from engine.store.outbox import insert_outbox

MediaKind = Literal["image", "video", "audio", "document"]


class TemplateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en_US", min_length=2, max_length=15)
    parameters: list[str] = Field(default_factory=list, max_length=20)


class SendRequest(BaseModel):
    """What an agent (or a bot, or an API client) asks to send on a ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: str | None = Field(default=None, min_length=1, max_length=4096)
    media_url: HttpUrl | None = None
    media_type: MediaKind | None = None
    filename: str | None = Field(default=None, min_length=1, max_length=255)
    quoted_message_id: int | None = Field(default=None, ge=1)
    template: TemplateRequest | None = None

    @model_validator(mode="after")
    def _something_to_send(self) -> SendRequest:
        if self.body is None and self.media_url is None and self.template is None:
            raise ValueError("give at least one of body, media_url or template")
        if self.template is not None and (self.body is not None or self.media_url is not None):
            raise ValueError("a template message carries no body or media")
        if self.media_type is not None and self.media_url is None:
            raise ValueError("media_type needs media_url")
        return self

    def message_type(self) -> MessageType:
        if self.template is not None:
            return MessageType.TEMPLATE
        if self.media_url is not None:
            return MessageType(self.media_type or "document")
        return MessageType.TEXT


class RecordedSend(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: int
    outbox_ids: list[int]


def record_send(
    conn: Connection,
    *,
    tenant_id: int,
    ticket_id: int,
    request: SendRequest,
    user_id: int | None,
    send_type: str = "chat",
    event_data: Mapping[str, object] | None = None,
    scheduled_at: datetime | None = None,
) -> RecordedSend:
    """Persist the message `pending` with its ticket event and outbox row.

    Raises NotFoundError when the ticket is not this tenant's. The caller enqueues the send
    after commit. `event_data` adds to the ticket event's data (who asked, a fingerprint).
    With `scheduled_at` the caller does not enqueue: the scheduler releases it when due.
    """
    target = get_ticket_target(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if target is None:
        raise NotFoundError(f"no ticket {ticket_id}")
    template = request.template
    message_id = insert_outbound_message(
        conn,
        target,
        NewOutboundMessage(
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            type=request.message_type(),
            body=request.body,
            media_url=None if request.media_url is None else str(request.media_url),
            filename=request.filename,
            quoted_message_id=request.quoted_message_id,
            template=None
            if template is None
            else Template(
                name=template.name,
                language=template.language,
                parameters=tuple(template.parameters),
            ),
            send_type=send_type,
            user_id=user_id,
            scheduled_at=scheduled_at,
        ),
    )
    insert_ticket_event(
        conn,
        tenant_id=tenant_id,
        ticket_id=ticket_id,
        type="message_sent",
        data={
            **(event_data or {}),
            "message_id": message_id,
            "user_id": user_id,
            "send_type": send_type,
        },
    )
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic="message.created",
        payload={"message_id": message_id, "ticket_id": ticket_id, "direction": "out"},
    )
    return RecordedSend(message_id=message_id, outbox_ids=[outbox_id])
