"""E-mail adapter, inbound: Mailgun route and SendGrid Inbound Parse forms in, events out."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from adapters.base import ChannelAdapter, ChannelSecrets
from adapters.email import ADAPTER, EmailAdapter, attachment_bytes
from engine.errors import InvalidPayloadError, ProviderRejectedError, SignatureMismatchError
from engine.events import (
    ChannelConnection,
    ChannelType,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    MessageType,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"
INBOUND = "support@help.acme.test"
SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
WEBHOOK_SECRET = "sg-parse-5Kq9xW2mZr7LtBv"
MAILGUN = ChannelSecrets(signing_key=SIGNING_KEY)
SENDGRID = ChannelSecrets(webhook_secret=WEBHOOK_SECRET)
SIGNED_AT = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)  # the fixtures' `timestamp`
NOW = SIGNED_AT + timedelta(seconds=5)
URLENCODED = "application/x-www-form-urlencoded"
SENDGRID_FORM = "multipart/form-data; boundary=xYzZY"
UNCLOSED = b'--xYzZY\r\nContent-Disposition: form-data; name="to"\r\n\r\nx'


def adapter_at(now: datetime = NOW) -> EmailAdapter:
    return EmailAdapter(clock=lambda: now)


def fixture(name: str) -> tuple[bytes, str]:
    """(body, content type) of a stored webhook: a Content-Type line, a blank line, the body."""
    head, _, body = (FIXTURES / f"{name}.http").read_bytes().partition(b"\r\n\r\n")
    return body, head.decode().partition(": ")[2]


def req(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> WebhookRequest:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    url = "https://example.test/webhooks/email/1"
    return WebhookRequest(body=body, headers=lowered, url=url, content_type=content_type)


def fixture_req(name: str, headers: dict[str, str] | None = None) -> WebhookRequest:
    return req(*fixture(name), headers)


def parse(body: bytes, content_type: str, address_id: str = INBOUND) -> list[InboundEvent]:
    return list(adapter_at().parse(body, address_id=address_id, content_type=content_type))


def only_message(name: str) -> InboundMessage:
    [event] = parse(*fixture(name))
    assert isinstance(event, InboundMessage), event
    return event


def form_of(name: str) -> dict[str, str]:
    body, content_type = fixture(name)
    assert content_type == URLENCODED
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def mailgun_signature(timestamp: str, token: str, key: str = SIGNING_KEY) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def resigned(form: dict[str, str], timestamp: str, token: str) -> bytes:
    """The same mail posted again with fresh signature fields (a Mailgun redelivery)."""
    fields = form | {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(timestamp, token),
    }
    return urlencode(fields).encode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- Mailgun signature -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["mailgun_form", "mailgun_reply", "mailgun_attachments", "mailgun_missing_sender"]
)
def test_fixture_signatures_are_real_and_pass(name: str) -> None:
    body, content_type = fixture(name)
    if content_type == URLENCODED:
        form = form_of(name)
        expected = mailgun_signature(form["timestamp"], form["token"])
        assert form["signature"] == expected
    adapter_at().verify(req(body, content_type), MAILGUN)


def test_signature_with_the_wrong_key_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="does not match"):
        adapter_at().verify(fixture_req("mailgun_form"), ChannelSecrets(signing_key="key-other"))


@pytest.mark.parametrize("field", ["timestamp", "token"])
def test_tampered_signed_field_is_rejected(field: str) -> None:
    form = form_of("mailgun_form")
    form[field] = form[field][:-1] + ("1" if form[field][-1] != "1" else "2")
    with pytest.raises(SignatureMismatchError, match="does not match"):
        adapter_at().verify(req(urlencode(form).encode(), URLENCODED), MAILGUN)


@pytest.mark.parametrize("field", ["timestamp", "token", "signature"])
def test_missing_signature_field_is_rejected(field: str) -> None:
    form = form_of("mailgun_form")
    del form[field]
    with pytest.raises(SignatureMismatchError, match="missing"):
        adapter_at().verify(req(urlencode(form).encode(), URLENCODED), MAILGUN)


@pytest.mark.parametrize(
    ("field", "value"),
    [("signature", "not-hex"), ("signature", "ab" * 20), ("timestamp", "17494l6383")],
)
def test_malformed_signature_field_is_rejected(field: str, value: str) -> None:
    form = form_of("mailgun_form") | {field: value}
    with pytest.raises(SignatureMismatchError, match="malformed"):
        adapter_at().verify(req(urlencode(form).encode(), URLENCODED), MAILGUN)


def test_redelivery_hours_later_still_passes() -> None:
    # Mailgun retries a route for 8 hours with the signature of the first attempt.
    adapter_at(SIGNED_AT + timedelta(hours=8)).verify(fixture_req("mailgun_form"), MAILGUN)


def test_signature_older_than_the_retry_horizon_is_rejected() -> None:
    late = adapter_at(SIGNED_AT + timedelta(hours=9, seconds=1))
    with pytest.raises(SignatureMismatchError, match="too old"):
        late.verify(fixture_req("mailgun_form"), MAILGUN)


def test_the_age_bound_is_configurable() -> None:
    strict = EmailAdapter(clock=lambda: SIGNED_AT + timedelta(minutes=16), mailgun_max_age_s=900)
    with pytest.raises(SignatureMismatchError, match="too old"):
        strict.verify(fixture_req("mailgun_form"), MAILGUN)


def test_signature_from_the_future_is_rejected() -> None:
    early = adapter_at(SIGNED_AT - timedelta(minutes=16))
    with pytest.raises(SignatureMismatchError, match="future"):
        early.verify(fixture_req("mailgun_form"), MAILGUN)


def test_body_that_is_no_form_fails_verification() -> None:
    with pytest.raises(SignatureMismatchError):
        adapter_at().verify(req(b'{"a": 1}', "application/json"), MAILGUN)


def test_channel_without_inbound_secret_rejects_everything() -> None:
    with pytest.raises(SignatureMismatchError, match="no signing_key"):
        adapter_at().verify(fixture_req("mailgun_form"), ChannelSecrets())


# --- SendGrid basic auth ---------------------------------------------------------------------


@pytest.mark.parametrize("user", ["sendgrid", "", "ops-team"])
def test_basic_auth_with_the_secret_passes_whatever_the_user(user: str) -> None:
    adapter_at().verify(fixture_req("sendgrid", basic(user, WEBHOOK_SECRET)), SENDGRID)


def test_basic_auth_with_a_wrong_password_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="does not match") as caught:
        adapter_at().verify(fixture_req("sendgrid", basic("sendgrid", "guess")), SENDGRID)
    assert WEBHOOK_SECRET not in str(caught.value)


def test_missing_authorization_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="missing"):
        adapter_at().verify(fixture_req("sendgrid"), SENDGRID)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + WEBHOOK_SECRET,
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode(),  # no colon
    ],
)
def test_malformed_authorization_is_rejected(header: str) -> None:
    with pytest.raises(SignatureMismatchError, match="malformed"):
        adapter_at().verify(fixture_req("sendgrid", {"Authorization": header}), SENDGRID)


def test_mailgun_channel_does_not_accept_basic_auth() -> None:
    secrets = ChannelSecrets(signing_key=SIGNING_KEY, webhook_secret=WEBHOOK_SECRET)
    with pytest.raises(SignatureMismatchError):
        adapter_at().verify(fixture_req("sendgrid", basic("u", WEBHOOK_SECRET)), secrets)


# --- addressing and dedupe -------------------------------------------------------------------


def test_adapter_is_a_whole_channel_for_email() -> None:
    adapter: ChannelAdapter = ADAPTER  # mypy checks the protocol here
    assert adapter.channel_type is ChannelType.EMAIL


@pytest.mark.parametrize(
    "name",
    ["mailgun_form", "mailgun_reply", "mailgun_attachments", "sendgrid", "sendgrid_html_only"],
)
def test_address_ids_are_the_bare_inbound_address(name: str) -> None:
    assert ADAPTER.address_ids(fixture_req(name)) == {INBOUND}


def test_mailgun_recipient_is_lower_cased() -> None:
    form = form_of("mailgun_form") | {"recipient": "Support@Help.ACME.test"}
    assert ADAPTER.address_ids(req(urlencode(form).encode(), URLENCODED)) == {INBOUND}


def test_sendgrid_without_envelope_is_addressed_by_its_to_header() -> None:
    body, content_type = fixture("sendgrid")
    start = body.index(b'name="envelope"')
    renamed = body[:start] + b'name="envelopX"' + body[start + len(b'name="envelope"') :]
    assert ADAPTER.address_ids(req(renamed, content_type)) == {INBOUND}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"recipient": "support@help.acme.test"}', "application/json"),
        (b"hello=world", URLENCODED),
        (b"recipient=not-an-address&signature=x", URLENCODED),
        (UNCLOSED, "multipart/form-data"),
        (UNCLOSED, SENDGRID_FORM),
    ],
)
def test_address_ids_rejects_what_is_no_inbound_mail_form(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidPayloadError):
        ADAPTER.address_ids(req(body, content_type))


def test_dedupe_key_is_the_message_id() -> None:
    assert (
        ADAPTER.dedupe_key(fixture_req("mailgun_form")) == "mid:CAF8x2mQk7Rt=Lw4@mail.example.com"
    )
    assert ADAPTER.dedupe_key(fixture_req("sendgrid")) == "mid:CAH3k9Lm2Qw=Xp7t@mail.example.org"


def test_dedupe_key_survives_a_resigned_redelivery() -> None:
    form = form_of("mailgun_form")
    again = resigned(form, "1749420000", "b" * 50)
    assert ADAPTER.dedupe_key(req(again, URLENCODED)) == ADAPTER.dedupe_key(
        fixture_req("mailgun_form")
    )


def test_without_message_id_the_keys_are_a_digest_of_the_mail_not_the_post() -> None:
    form = {k: v for k, v in form_of("mailgun_form").items() if k != "Message-Id"}
    form["message-headers"] = "[]"
    first = req(urlencode(form).encode(), URLENCODED)
    again = req(resigned(form, "1749420000", "c" * 50), URLENCODED)
    key = ADAPTER.dedupe_key(first)
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert ADAPTER.dedupe_key(again) == key
    [message] = parse(first.body, URLENCODED)
    assert isinstance(message, InboundMessage) and message.provider_message_id == key


def test_dedupe_key_of_garbage_is_a_body_digest() -> None:
    assert ADAPTER.dedupe_key(req(b"\x00garbage", "text/plain")).startswith("sha256:")


def test_parse_for_another_address_is_empty() -> None:
    assert parse(*fixture("mailgun_form"), address_id="sales@help.acme.test") == []


def test_parse_matches_the_address_case_insensitively() -> None:
    assert len(parse(*fixture("sendgrid"), address_id="Support@Help.Acme.Test")) == 1


# --- messages --------------------------------------------------------------------------------


def test_mailgun_form() -> None:
    message = only_message("mailgun_form")
    assert message.type is MessageType.EMAIL
    assert message.provider_message_id == "CAF8x2mQk7Rt=Lw4@mail.example.com"
    assert message.provider_timestamp == SIGNED_AT
    assert (message.sender.external_id, message.sender.name) == ("ana.lima@example.com", "Ana Lima")
    assert message.subject == "Pedido #4521 atrasado"
    # stripped-text: the new text without the signature block.
    assert message.body == "Olá! Meu pedido #4521 ainda não chegou."
    assert message.quoted_provider_message_id is None
    assert message.thread_ids == ()
    assert message.media == ()


def test_mailgun_without_stripped_text_uses_body_plain() -> None:
    form = {k: v for k, v in form_of("mailgun_form").items() if k != "stripped-text"}
    [message] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(message, InboundMessage)
    assert message.body == "Olá! Meu pedido #4521 ainda não chegou.\r\n\r\nAna"


def test_mailgun_reply_carries_in_reply_to_and_references() -> None:
    message = only_message("mailgun_reply")
    assert message.subject == "Re: Pedido #4521 atrasado"
    assert message.body == "Obrigada, chegou hoje!"
    ours = "5f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d@help.acme.test"
    assert message.quoted_provider_message_id == ours
    assert message.thread_ids == ("CAF8x2mQk7Rt=Lw4@mail.example.com", ours)


def test_mailgun_headers_come_from_message_headers_when_not_posted_as_fields() -> None:
    form = {k: v for k, v in form_of("mailgun_form").items() if k not in ("Message-Id", "Date")}
    form.pop("timestamp")
    [message] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(message, InboundMessage)
    assert message.provider_message_id == "CAF8x2mQk7Rt=Lw4@mail.example.com"
    # No Mailgun timestamp: the mail's Date header, in UTC.
    assert message.provider_timestamp == datetime(2025, 6, 8, 20, 59, 40, tzinfo=UTC)


def test_without_timestamp_or_date_the_clock_is_used() -> None:
    form = {k: v for k, v in form_of("mailgun_form").items() if k not in ("Date", "timestamp")}
    form["message-headers"] = "not json"
    [message] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(message, InboundMessage) and message.provider_timestamp == NOW


def test_mailgun_attachments_become_media_referring_to_their_form_parts() -> None:
    message = only_message("mailgun_attachments")
    assert message.body == "Seguem a nota fiscal e a foto da caixa amassada."
    pdf, png = message.media
    assert (pdf.type, pdf.mime_type, pdf.filename) == (
        MessageType.DOCUMENT,
        "application/pdf",
        "nota-fiscal-março.pdf",
    )
    assert (png.type, png.mime_type, png.filename) == (MessageType.IMAGE, "image/png", "caixa.png")
    assert (pdf.provider_media_id, png.provider_media_id) == ("attachment-1", "attachment-2")


def test_attachment_bytes_cuts_the_exact_file_out_of_the_inbox_body() -> None:
    body, content_type = fixture("mailgun_attachments")
    message = only_message("mailgun_attachments")
    for media in message.media:
        assert media.provider_media_id is not None
        content = attachment_bytes(body, content_type, media.provider_media_id)
        assert hashlib.sha256(content.data).hexdigest() == media.sha256
        assert (content.mime_type, content.filename) == (media.mime_type, media.filename)
    png = attachment_bytes(body, content_type, "attachment-2").data
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("reference", ["attachment-3", "subject", ""])
def test_attachment_bytes_of_an_unknown_reference_is_refused(reference: str) -> None:
    with pytest.raises(InvalidPayloadError):
        attachment_bytes(*fixture("mailgun_attachments"), reference)


def test_sendgrid_parse() -> None:
    message = only_message("sendgrid")
    assert message.provider_message_id == "CAH3k9Lm2Qw=Xp7t@mail.example.org"
    assert message.provider_timestamp == datetime(2025, 6, 8, 21, 4, 5, tzinfo=UTC)
    assert (message.sender.external_id, message.sender.name) == (
        "carla.dias@example.org",
        "Carla Dias",
    )
    assert message.subject == "Re: Troca do tênis"
    # The text field is ISO-8859-1, as `charsets` declares.
    assert message.body == "Segue a etiqueta de devolução."
    assert message.quoted_provider_message_id == (
        "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1@help.acme.test"
    )
    assert message.thread_ids == (
        "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0@help.acme.test",
        "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1@help.acme.test",
    )
    [media] = message.media
    assert (media.type, media.provider_media_id, media.filename, media.mime_type) == (
        MessageType.DOCUMENT,
        "attachment1",
        "etiqueta.pdf",
        "application/pdf",
    )
    content = attachment_bytes(*fixture("sendgrid"), "attachment1")
    assert content.data.startswith(b"%PDF-1.4\r\n")


def test_sendgrid_html_only_mail_is_read_as_plain_text() -> None:
    message = only_message("sendgrid_html_only")
    assert message.body == (
        "Bom dia,\n\nPreciso da 2ª via da nota fiscal & do boleto.\n\nObrigado,\nBruno"
    )
    assert "alert" not in (message.body or "") and "color" not in (message.body or "")
    assert message.sender.external_id == "bruno.costa@example.net"
    assert message.provider_timestamp == datetime(2025, 6, 9, 9, 15, tzinfo=UTC)


def test_encoded_word_subject_is_decoded() -> None:
    form = form_of("mailgun_form") | {"subject": "=?UTF-8?Q?Troca_do_t=C3=AAnis?="}
    [message] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(message, InboundMessage) and message.subject == "Troca do tênis"


def test_missing_sender_is_a_malformed_event_without_the_mail_content() -> None:
    [event] = parse(*fixture("mailgun_missing_sender"))
    assert isinstance(event, MalformedEvent)
    assert event.reason == "from: no sender address"
    assert "stripped-text" in event.fragment
    assert "pedido" not in event.fragment.lower()


def test_oversized_sender_address_is_a_malformed_event_naming_the_field() -> None:
    form = form_of("mailgun_form") | {"from": f"Ana <{'a' * 200}@example.com>"}
    form.pop("From")
    [event] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith("from.external_id: String should have at most 200")


def test_long_display_name_is_cut_not_rejected() -> None:
    form = form_of("mailgun_form") | {"from": f"{'A' * 300} <ana.lima@example.com>"}
    form.pop("From")
    [message] = parse(urlencode(form).encode(), URLENCODED)
    assert isinstance(message, InboundMessage) and message.sender.name == "A" * 200


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\x00\xffnot a form", "application/octet-stream", "is not a form"),
        (UNCLOSED, SENDGRID_FORM, "closing boundary"),
        (b"hello=world", URLENCODED, "neither a Mailgun"),
        (b"recipient=nobody&from=a%40b.c", URLENCODED, "recipient"),
        (b"envelope=%7B%22to%22%3A%22x%22%7D&from=a%40b.c", URLENCODED, "sendgrid.envelope.to"),
        (b"envelope=%7B%7D&from=a%40b.c", URLENCODED, "envelope.to: no e-mail address"),
    ],
)
def test_unreadable_body_is_one_malformed_event(
    body: bytes, content_type: str, reason: str
) -> None:
    [event] = parse(body, content_type)
    assert isinstance(event, MalformedEvent)
    assert reason in event.reason
    assert len(event.fragment) <= 2000


def test_truncated_multipart_is_malformed_and_names_no_content() -> None:
    body, content_type = fixture("mailgun_attachments")
    [event] = parse(body[: len(body) // 2], content_type)
    assert isinstance(event, MalformedEvent) and "closing boundary" in event.reason


# --- media ----------------------------------------------------------------------------------


def test_fetch_media_refuses_because_attachments_live_in_the_webhook() -> None:
    message = only_message("mailgun_attachments")
    channel = ChannelConnection(id=1, tenant_id=1, type=ChannelType.EMAIL, external_id=INBOUND)
    with httpx.Client() as http, pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.fetch_media(message.media[0], channel=channel, http=http)
    assert caught.value.code == "not_fetchable"
