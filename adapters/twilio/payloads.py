"""Twilio Messaging webhook forms as pydantic models that ignore unknown fields."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.errors import InvalidPayloadError
from engine.phone import normalize_phone

# Statuses Twilio reports for messages we sent (Message resource `status`). An inbound
# message carries SmsStatus=received and a Body, so it never matches.
OUTBOUND_STATUSES = frozenset(
    {
        "queued",
        "accepted",
        "scheduled",
        "canceled",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "partially_delivered",
    }
)


def _blank_is_none(value: object) -> object:
    # keep_blank_values turns `ErrorCode=` into "", which means "not given", not a bad number.
    return None if value == "" else value


_Optional = BeforeValidator(_blank_is_none)


class Provider(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(Provider):
    """What every messaging webhook (inbound message or status callback) carries."""

    message_sid: str = Field(alias="MessageSid", min_length=1, max_length=200)
    from_: str = Field(alias="From", min_length=1, max_length=200)
    to: str = Field(alias="To", min_length=1, max_length=200)
    message_status: str | None = Field(default=None, alias="MessageStatus")
    body: str | None = Field(default=None, alias="Body")

    @property
    def is_status_callback(self) -> bool:
        return (
            self.message_status is not None
            and self.message_status.lower() in OUTBOUND_STATUSES
            and self.body is None
        )

    @property
    def address(self) -> str:
        """Our number: To of an inbound message, From of a status callback for our send."""
        ours = self.from_ if self.is_status_callback else self.to
        # Short codes and alphanumeric senders are no E.164 number; they route as given.
        return normalize_phone(ours) or ours


class InboundSms(Envelope):
    """An incoming SMS/MMS (Twilio's "incoming message" webhook)."""

    num_media: Annotated[int, _Optional] = Field(default=0, alias="NumMedia", ge=0, le=10)
    opt_out_type: Annotated[str | None, _Optional] = Field(default=None, alias="OptOutType")


class StatusCallback(Envelope):
    """A StatusCallback request about a message we sent."""

    message_status: str = Field(alias="MessageStatus")
    error_code: Annotated[int | None, _Optional] = Field(default=None, alias="ErrorCode")
    error_message: Annotated[str | None, _Optional] = Field(default=None, alias="ErrorMessage")


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """Every (name, value) of a urlencoded body, in order, repeats kept (the signature signs them).

    Raises InvalidPayloadError when the bytes or their %-escapes are not UTF-8.
    """
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidPayloadError("body is not a UTF-8 form") from None


def form_fields(body: bytes) -> dict[str, str]:
    """The form as a mapping; a repeated name keeps its first value."""
    fields: dict[str, str] = {}
    for name, value in form_pairs(body):
        fields.setdefault(name, value)
    return fields


def describe(exc: ValidationError) -> str:
    """`Field: message` of the first error, without pydantic's echo of the input."""
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    return f"{path}: {first['msg']}"


def load_envelope(body: bytes) -> Envelope:
    """Raises InvalidPayloadError when the body is not a Twilio messaging form."""
    try:
        return Envelope.model_validate(form_fields(body))
    except ValidationError as exc:
        raise InvalidPayloadError(describe(exc)) from None
