"""Request and response models of the webhook subscription endpoints, with URL rules."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from api.framework import MAX_BIGINT
from api.resources.common import Clean
from engine.store import webhooks as store

MAX_PAGE = 100
DEFAULT_PAGE = 50

WebhookEvent = Literal[
    "message.created",
    "message.status",
    "ticket.created",
    "ticket.updated",
    "campaign.progress",
    "contact.updated",
    "sla.breached",
]


def _check_url(value: str) -> str:
    """http(s) with a host; no credentials (they would show in every listing) or fragment.

    Private addresses are allowed on purpose: tenants point these at their own systems.
    Redirects are never followed when delivering.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        raise ValueError("must be a valid http or https URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials; verify the signature instead")
    if parts.fragment or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain a fragment, spaces or control characters")
    return value


def _unique(events: list[WebhookEvent]) -> list[WebhookEvent]:
    return sorted(set(events))


Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=10, max_length=2_000),
    AfterValidator(_check_url),
    Field(json_schema_extra={"format": "uri", "examples": ["https://crm.example.com/flowdesk"]}),
]
Events = Annotated[list[WebhookEvent], Field(min_length=1, max_length=20), AfterValidator(_unique)]
# Printable ASCII without spaces, so it survives copy and paste into any receiver's config.
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[!-~]+$")]


class PageCursor:
    """Opaque page position: the last id of the previous page."""

    @staticmethod
    def encode(last_id: int) -> str:
        return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")

    @staticmethod
    def decode(value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            tag, _, number = raw.partition(":")
            last_id = int(number)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("not a cursor returned by this API") from None
        if tag != "id" or not 1 <= last_id <= MAX_BIGINT or len(value) > 40:
            raise ValueError("not a cursor returned by this API")
        return last_id


Cursor = Annotated[
    int | None,
    BeforeValidator(PageCursor.decode),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "`next_cursor` of the previous page.",
        }
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubscriptionIn(_In):
    url: Url
    events: Events
    secret: Secret | None = Field(
        default=None, description="Leave out to have one generated; shown once either way."
    )
    enabled: bool = True


class SubscriptionPatch(_In):
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.url is None and self.events is None and self.enabled is None:
            raise ValueError("give at least one of url, events, enabled")
        return self


class SecretIn(_In):
    secret: Secret | None = None


class SubscriptionOut(_Out):
    id: int
    url: str
    events: list[WebhookEvent]
    enabled: bool
    created_at: datetime


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="The signing secret. Shown only in this response.")


class SubscriptionPage(_Out):
    items: list[SubscriptionOut]
    next_cursor: str | None


class SubscriptionQuery(_In):
    enabled: bool | None = None
    event: WebhookEvent | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200), Clean] | None = Field(
        default=None, description="Part of the URL, any case."
    )
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: Cursor = None


class DeliveryOut(_Out):
    id: int
    subscription_id: int
    event_id: int | None
    event: str
    status: store.DeliveryStatus
    status_code: int | None
    latency_ms: int | None
    attempts: int
    error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(_Out):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeliveryQuery(_In):
    status: store.DeliveryStatus | None = None
    event: WebhookEvent | None = None
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: Cursor = None
