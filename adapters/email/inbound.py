"""Inbound mail: a Mailgun or SendGrid form read into one provider-neutral Mail, then an event."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import HeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from typing import Literal

from pydantic import ValidationError

from adapters.email.form import Form, FormError, parse_form
from adapters.email.mail import (
    addresses,
    bare,
    html_to_text,
    media_kind,
    message_ids,
    normalise_message_id,
    parse_date,
    synthetic_id,
)
from adapters.email.payloads import MailgunForm, SendGridForm, charsets
from engine.errors import InvalidPayloadError
from engine.events import (
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    Media,
    MediaContent,
    MessageType,
    Sender,
)

Provider = Literal["mailgun", "sendgrid"]

FRAGMENT_MAX_CHARS = 2000
_NAME_MAX_CHARS = 200
# Mailgun names files attachment-1…, SendGrid attachment1…; anything else is not ours to keep.
_ATTACHMENT = re.compile(r"attachment-?\d+")
_FOLD = re.compile(r"\r?\n[ \t]+")


@dataclass(frozen=True)
class Attachment:
    reference: str
    filename: str | None
    content_type: str | None
    sha256: str


@dataclass(frozen=True)
class Mail:
    """What both providers tell us about one inbound mail, as text."""

    provider: Provider
    recipients: tuple[str, ...]
    from_header: str | None
    subject: str | None
    text: str | None
    html: str | None
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    date: str | None
    unix_timestamp: str | None
    attachments: tuple[Attachment, ...]
    field_sizes: dict[str, int]

    def provider_message_id(self) -> str:
        """The normalised Message-ID, or a digest of what every redelivery repeats."""
        own = normalise_message_id(self.message_id) if self.message_id else None
        return own or synthetic_id(
            self.from_header, ",".join(self.recipients), self.subject, self.date, self.text
        )


def read_form(body: bytes, content_type: str) -> Form:
    try:
        return parse_form(body, content_type)
    except FormError as exc:
        raise InvalidPayloadError(str(exc)) from None


def provider_of(form: Form) -> Provider:
    """Which provider posted `form`, by the fields only that provider sends."""
    fields = form.fields()
    if "envelope" in fields or "headers" in fields:
        return "sendgrid"
    if "recipient" in fields or "body-plain" in fields or "signature" in fields:
        return "mailgun"
    raise InvalidPayloadError("neither a Mailgun route nor a SendGrid Inbound Parse form")


def read_mail(body: bytes, content_type: str) -> Mail:
    """Raises InvalidPayloadError naming the field when the form is not of either shape."""
    form = read_form(body, content_type)
    provider = provider_of(form)
    try:
        return _mailgun(form) if provider == "mailgun" else _sendgrid(form)
    except ValidationError as exc:
        # `from None`: pydantic's message quotes the input, and bodies must not reach the logs.
        raise InvalidPayloadError(_reason(exc, provider)) from None


def _decoded(form: Form, encodings: dict[str, str]) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for name, data in form.fields().items():
        try:
            decoded[name] = data.decode(encodings.get(name, "utf-8"), "replace")
        except LookupError:  # a charset name Python does not know
            decoded[name] = data.decode("utf-8", "replace")
    return decoded


def _attachments(
    form: Form, info: dict[str, tuple[str | None, str | None]]
) -> tuple[Attachment, ...]:
    found = []
    for part in form.files():
        if not _ATTACHMENT.fullmatch(part.name):
            continue
        info_name, info_type = info.get(part.name, (None, None))
        found.append(
            Attachment(
                reference=part.name,
                filename=part.filename or info_name,
                content_type=part.content_type or info_type,
                sha256=hashlib.sha256(part.data).hexdigest(),
            )
        )
    return tuple(found)


def _sizes(form: Form) -> dict[str, int]:
    return {part.name: len(part.data) for part in form.parts}


def _mailgun(form: Form) -> Mail:
    decoded = _decoded(form, {})
    model = MailgunForm.model_validate(decoded)
    recipients = tuple(bare(a) for a in addresses(model.recipient))
    if not recipients:
        raise InvalidPayloadError("recipient: not an e-mail address")
    return Mail(
        provider="mailgun",
        recipients=recipients,
        from_header=model.from_ or model.sender,
        subject=model.subject,
        text=model.stripped_text or model.body_plain,
        html=model.body_html,
        message_id=model.header("message-id"),
        in_reply_to=model.header("in-reply-to"),
        references=model.header("references"),
        date=model.header("date"),
        unix_timestamp=model.timestamp,
        attachments=_attachments(form, {}),
        field_sizes=_sizes(form),
    )


def _sendgrid(form: Form) -> Mail:
    decoded = _decoded(form, charsets(form.fields().get("charsets")))
    model = SendGridForm.model_validate(decoded)
    # compat32 hands back the raw values; our own readers cope with junk, where the modern
    # policy's header classes can raise on a broken Message-ID or Date.
    headers = HeaderParser(policy=compat32).parsestr(model.headers)

    def header(name: str) -> str | None:
        value = headers.get(name)
        return _FOLD.sub(" ", value) if isinstance(value, str) else None

    envelope_to = model.envelope.to if model.envelope else []
    found = [a for raw in envelope_to for a in addresses(raw)] or list(addresses(model.to))
    recipients = tuple(dict.fromkeys(bare(a) for a in found))
    if not recipients:
        raise InvalidPayloadError("envelope.to: no e-mail address")
    info = {k: (v.filename, v.type) for k, v in model.attachment_info.items()}
    return Mail(
        provider="sendgrid",
        recipients=recipients,
        from_header=model.from_ or (model.envelope.from_ if model.envelope else None),
        subject=model.subject,
        text=model.text,
        html=model.html,
        message_id=header("message-id"),
        in_reply_to=header("in-reply-to"),
        references=header("references"),
        date=header("date"),
        unix_timestamp=None,
        attachments=_attachments(form, info),
        field_sizes=_sizes(form),
    )


def _subject(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    if "=?" in raw:  # RFC 2047 encoded words a provider left undecoded
        try:
            return str(default_policy.header_factory("subject", raw))
        except (ValueError, IndexError, TypeError):
            return raw
    return raw


def _body(mail: Mail) -> str | None:
    if mail.text and mail.text.strip():
        return mail.text.strip()
    if mail.html and mail.html.strip():
        return html_to_text(mail.html) or None
    return None


def _timestamp(mail: Mail, now: datetime) -> datetime:
    raw = mail.unix_timestamp
    if raw and raw.isascii() and raw.isdigit():
        try:
            return datetime.fromtimestamp(int(raw), tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return parse_date(mail.date) or now


def _media(attachment: Attachment) -> Media:
    return Media(
        type=media_kind(attachment.content_type),
        mime_type=attachment.content_type,
        # The bytes came inside the webhook; the reference names the form part that holds
        # them so attachment_bytes() can cut them out of the inbox body later.
        provider_media_id=attachment.reference,
        filename=attachment.filename,
        sha256=attachment.sha256,
    )


def malformed(reason: str, *, sizes: dict[str, int] | None = None) -> MalformedEvent:
    # A form's fields are a mail's content: the operator gets field names and sizes, and the
    # raw body stays in the inbox row for whoever may read it.
    return MalformedEvent(reason=reason, fragment=json.dumps(sizes or {})[:FRAGMENT_MAX_CHARS])


def unreadable(reason: str, body: bytes, content_type: str) -> MalformedEvent:
    """The MalformedEvent for a body read_mail refused."""
    try:
        form = read_form(body, content_type)
    except InvalidPayloadError:
        fragment = body[:FRAGMENT_MAX_CHARS].decode("utf-8", "replace")
        return MalformedEvent(reason=reason, fragment=fragment)
    return malformed(reason, sizes=_sizes(form))


def _reason(exc: ValidationError, part: str) -> str:
    first = exc.errors()[0]
    return f"{part}{''.join(f'.{p}' for p in first['loc'])}: {first['msg']}"


def to_event(mail: Mail, *, now: datetime) -> InboundEvent:
    """The mail as one InboundMessage, or a MalformedEvent naming the field at fault."""
    found = addresses(mail.from_header)
    if not found:
        return malformed("from: no sender address", sizes=mail.field_sizes)
    author = found[0]
    try:
        sender = Sender(
            external_id=bare(author), name=author.display_name[:_NAME_MAX_CHARS] or None
        )
    except ValidationError as exc:
        return malformed(_reason(exc, "from"), sizes=mail.field_sizes)
    quoted = message_ids(mail.in_reply_to)
    try:
        return InboundMessage(
            provider_message_id=mail.provider_message_id(),
            provider_timestamp=_timestamp(mail, now),
            sender=sender,
            type=MessageType.EMAIL,
            subject=_subject(mail.subject),
            body=_body(mail),
            media=tuple(_media(a) for a in mail.attachments),
            quoted_provider_message_id=quoted[0] if quoted else None,
            thread_ids=message_ids(mail.references),
        )
    except ValidationError as exc:
        return malformed(_reason(exc, "message"), sizes=mail.field_sizes)


def attachment_bytes(body: bytes, content_type: str, reference: str) -> MediaContent:
    """The bytes of attachment `reference` (a Media.provider_media_id) in a webhook body.

    Pure. Raises InvalidPayloadError when the body is not a form or holds no such file.
    """
    part = read_form(body, content_type).part(reference)
    if part is None or part.filename is None:
        raise InvalidPayloadError(f"no attachment {reference!r} in this body")
    return MediaContent(data=part.data, mime_type=part.content_type, filename=part.filename)
