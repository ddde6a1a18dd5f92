"""E-mail channel adapter: Mailgun / SendGrid inbound webhooks in, SMTP out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from adapters.base import ChannelSecrets
from adapters.email.inbound import read_mail, to_event, unreadable
from adapters.email.mail import SYNTHETIC_PREFIX
from adapters.email.signature import verify_basic_auth, verify_mailgun
from adapters.email.smtp import build_message, sender_address, submit
from engine.errors import InvalidPayloadError, ProviderRejectedError, SignatureMismatchError
from engine.events import (
    ChannelConnection,
    ChannelType,
    InboundEvent,
    Media,
    MediaContent,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)

Clock = Callable[[], datetime]

# Mailgun retries a route POST for 8 hours and, as far as anyone has observed, resends the
# original signature fields: a shorter bound would turn an outage of ours into lost mail.
# Replays inside the window are absorbed by the dedupe key (the Message-ID).
MAILGUN_MAX_AGE_S = 9 * 3600
MAILGUN_MAX_SKEW_S = 15 * 60
SMTP_TIMEOUT_S = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmailAdapter:
    """One channel per inbound address; which provider posts is told by the form's fields.

    Inbound attachments arrive inside the webhook body; Media.provider_media_id names the
    form part (`attachment-1`, `attachment1`) and `attachment_bytes()` extracts it from the
    inbox body, because neither provider keeps them for a later download.
    """

    channel_type = ChannelType.EMAIL

    def __init__(
        self,
        *,
        clock: Clock = _utc_now,
        mailgun_max_age_s: int = MAILGUN_MAX_AGE_S,
        mailgun_max_skew_s: int = MAILGUN_MAX_SKEW_S,
        smtp_timeout_s: float = SMTP_TIMEOUT_S,
    ) -> None:
        self._clock = clock
        self._mailgun_max_age_s = mailgun_max_age_s
        self._mailgun_max_skew_s = mailgun_max_skew_s
        self._smtp_timeout_s = smtp_timeout_s

    # --- inbound ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        """Mailgun channels hold a signing_key, SendGrid channels a webhook_secret."""
        if secrets.signing_key:
            verify_mailgun(
                request,
                secrets.signing_key,
                now=self._clock(),
                max_age_s=self._mailgun_max_age_s,
                max_skew_s=self._mailgun_max_skew_s,
            )
        elif secrets.webhook_secret:
            verify_basic_auth(request, secrets.webhook_secret)
        else:
            raise SignatureMismatchError("no signing_key or webhook_secret configured")

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        return set(read_mail(request.body, request.content_type).recipients)

    def dedupe_key(self, request: WebhookRequest) -> str:
        # A mail's Message-ID survives redelivery even when the provider re-signs the POST.
        try:
            message_id = read_mail(request.body, request.content_type).provider_message_id()
        except InvalidPayloadError:
            return SYNTHETIC_PREFIX + hashlib.sha256(request.body).hexdigest()
        return message_id if message_id.startswith(SYNTHETIC_PREFIX) else "mid:" + message_id

    def parse(self, body: bytes, *, address_id: str, content_type: str) -> Sequence[InboundEvent]:
        try:
            mail = read_mail(body, content_type)
        except InvalidPayloadError as exc:
            return [unreadable(str(exc), body, content_type)]
        if address_id.lower() not in mail.recipients:
            return []
        return [to_event(mail, now=self._clock())]

    # --- outbound -----------------------------------------------------------------------

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        """Submit over SMTP (`http` is unused). Raises ProviderRejectedError for 5yz replies,
        ProviderUnavailableError for 4yz replies, timeouts and refused connections."""
        sender = sender_address(channel)
        mail, message_id = build_message(message, sender=sender, now=self._clock())
        submit(
            mail,
            sender=sender,
            recipient=str(mail["To"]),
            channel=channel,
            timeout_s=self._smtp_timeout_s,
        )
        return SendResult(provider_message_id=message_id)

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        """Always refuses: attachments exist only in the webhook body (see attachment_bytes)."""
        raise ProviderRejectedError(
            f"e-mail attachment {media.provider_media_id!r} is not fetchable from the provider;"
            " extract it from the inbox body with attachment_bytes()",
            code="not_fetchable",
        )


ADAPTER = EmailAdapter()
