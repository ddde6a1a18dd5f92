"""Mailgun route and SendGrid Inbound Parse form fields as pydantic models ignoring the rest."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _lenient_json(value: object) -> Any:
    # Helper fields (header dumps, attachment-info, charsets) are conveniences: an unreadable
    # one must not sink a mail whose essential fields are fine.
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


class Provider(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


def _header_pairs(value: object) -> list[tuple[str, str]]:
    parsed = _lenient_json(value)
    if not isinstance(parsed, list):
        return []
    return [
        (pair[0], pair[1])
        for pair in parsed
        if isinstance(pair, list | tuple)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    ]


class MailgunForm(Provider):
    """A route's forward() POST; MIME headers also arrive as fields named like the header."""

    recipient: str = Field(min_length=1)
    sender: str | None = None
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    body_plain: str | None = Field(default=None, alias="body-plain")
    stripped_text: str | None = Field(default=None, alias="stripped-text")
    body_html: str | None = Field(default=None, alias="body-html")
    message_id: str | None = Field(default=None, alias="message-id")
    in_reply_to: str | None = Field(default=None, alias="in-reply-to")
    references: str | None = None
    date: str | None = None
    message_headers: Annotated[list[tuple[str, str]], BeforeValidator(_header_pairs)] = Field(
        default_factory=list, alias="message-headers"
    )
    timestamp: str | None = None

    def header(self, name: str) -> str | None:
        """A MIME header: its own field first, else the `message-headers` dump."""
        own = {
            "message-id": self.message_id,
            "in-reply-to": self.in_reply_to,
            "references": self.references,
            "date": self.date,
        }.get(name)
        if own:
            return own
        return next((v for k, v in self.message_headers if k.lower() == name), None)


class SendGridEnvelope(Provider):
    to: list[str] = Field(default_factory=list)
    from_: str | None = Field(default=None, alias="from")


class AttachmentInfo(Provider):
    filename: str | None = None
    type: str | None = None


def _info(value: object) -> dict[str, AttachmentInfo]:
    parsed = _lenient_json(value)
    if not isinstance(parsed, dict):
        return {}
    return {
        key: AttachmentInfo.model_validate(item)
        for key, item in parsed.items()
        if isinstance(item, dict)
    }


class SendGridForm(Provider):
    """An Inbound Parse POST (parsed mode); `headers` is the raw header block."""

    envelope: Annotated[SendGridEnvelope | None, BeforeValidator(_lenient_json)] = None
    to: str | None = None
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    headers: str = ""
    attachment_info: Annotated[dict[str, AttachmentInfo], BeforeValidator(_info)] = Field(
        default_factory=dict, alias="attachment-info"
    )


def charsets(value: bytes | None) -> dict[str, str]:
    """SendGrid's `charsets` field: which encoding each other field's bytes are in."""
    parsed = _lenient_json(value.decode("ascii", "replace")) if value else None
    if not isinstance(parsed, dict):
        return {}
    return {k: v for k, v in parsed.items() if isinstance(k, str) and isinstance(v, str)}
