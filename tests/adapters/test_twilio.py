"""Twilio SMS adapter, inbound: Twilio's documented webhook forms in, canonical events out."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from adapters.base import ChannelAdapter
from adapters.twilio import ADAPTER, TwilioAdapter
from adapters.twilio.signature import compute_signature
from engine.errors import InvalidPayloadError, SignatureMismatchError
from engine.events import (
    ChannelSecrets,
    ChannelType,
    ContactChange,
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    MessageType,
    ProviderNotice,
    StatusUpdate,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sms"
OUR_NUMBER = "+14155550100"
CUSTOMER = "+14155550123"
AUTH_TOKEN = "9a8b7c6d5e4f30211f2e3d4c5b6a7988"
SECRETS = ChannelSecrets(auth_token=AUTH_TOKEN)
URL = "https://flowdesk.example.com/webhooks/sms/7"
URL_WITH_QUERY = "https://flowdesk.example.com/webhooks/sms/7?tenant=acme&v=2"
NOW = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
PARSER = TwilioAdapter(clock=lambda: NOW)


def body_of(name: str) -> bytes:
    # Fixture files may end in a newline; Twilio's bodies do not.
    return (FIXTURES / f"{name}.txt").read_bytes().strip()


def form_of(name: str) -> dict[str, str]:
    return dict(parse_qsl(body_of(name).decode(), keep_blank_values=True))


def encode(form: dict[str, str]) -> bytes:
    return urlencode(form).encode()


def sign(url: str, body: bytes, token: str = AUTH_TOKEN) -> str:
    """Twilio's documented algorithm, written out independently of the adapter."""
    params = sorted(parse_qsl(body.decode(), keep_blank_values=True))
    data = url + "".join(name + value for name, value in params)
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def req(body: bytes, headers: dict[str, str] | None = None, url: str = URL) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        url=url,
        content_type="application/x-www-form-urlencoded",
    )


def signed(body: bytes, url: str = URL) -> WebhookRequest:
    return req(body, {"X-Twilio-Signature": sign(url, body)}, url)


def parse(body: bytes, address_id: str = OUR_NUMBER) -> list[InboundEvent]:
    return list(PARSER.parse(body, address_id=address_id))


def only_message(body: bytes) -> InboundMessage:
    [event] = parse(body)
    assert isinstance(event, InboundMessage), event
    return event


def only_status(name: str) -> StatusUpdate:
    [event] = parse(body_of(name))
    assert isinstance(event, StatusUpdate), event
    return event


# --- signature: Twilio's published examples --------------------------------------------------

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def test_signature_of_the_example_in_twilios_webhook_security_docs() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    expected = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert compute_signature("12345", DOCS_URL, list(params.items())) == expected
    headers = {"X-Twilio-Signature": expected}
    ADAPTER.verify(req(encode(params), headers, DOCS_URL), ChannelSecrets(auth_token="12345"))


# The vectors of twilio-python's own RequestValidator tests.
_LIBRARY_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DOCS_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # Received with a port Twilio did not sign: the port is dropped.
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # Twilio signed the URL with :443 spelled out, we received it without.
        (DOCS_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_signature_vectors_of_twilios_request_validator(url: str, expected: str) -> None:
    headers = {"X-Twilio-Signature": expected}
    ADAPTER.verify(req(encode(_LIBRARY_PARAMS), headers, url), ChannelSecrets(auth_token="12345"))


def test_repeated_parameter_signs_every_value_in_order() -> None:
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
    headers = {"X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="}
    ADAPTER.verify(req(body, headers, DOCS_URL), ChannelSecrets(auth_token="12345"))


# --- signature: our own webhooks --------------------------------------------------------------


@pytest.mark.parametrize("url", [URL, URL_WITH_QUERY])
@pytest.mark.parametrize("name", ["inbound_sms", "inbound_mms", "stop", "status_delivered"])
def test_valid_signature_passes(name: str, url: str) -> None:
    ADAPTER.verify(signed(body_of(name), url), SECRETS)


@pytest.mark.parametrize("header", ["X-Twilio-Signature", "x-twilio-signature"])
def test_header_name_case_does_not_matter(header: str) -> None:
    body = body_of("inbound_sms")
    ADAPTER.verify(req(body, {header: sign(URL, body)}), SECRETS)


def test_parameter_order_in_the_body_does_not_matter() -> None:
    body = body_of("inbound_sms")
    reordered = encode(dict(reversed(list(form_of("inbound_sms").items()))))
    assert reordered != body
    ADAPTER.verify(req(reordered, {"X-Twilio-Signature": sign(URL, body)}), SECRETS)


def test_signature_with_the_wrong_token_is_rejected() -> None:
    body = body_of("inbound_sms")
    headers = {"X-Twilio-Signature": sign(URL, body, "0" * 32)}
    with pytest.raises(SignatureMismatchError, match="does not match"):
        ADAPTER.verify(req(body, headers), SECRETS)


def test_tampered_body_is_rejected() -> None:
    body = body_of("inbound_sms")
    tampered = body.replace(b"4521", b"4522")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(tampered, {"X-Twilio-Signature": sign(URL, body)}), SECRETS)


def test_signature_for_another_query_string_is_rejected() -> None:
    body = body_of("inbound_sms")
    headers = {"X-Twilio-Signature": sign(URL_WITH_QUERY, body)}
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body, headers, URL_WITH_QUERY.replace("acme", "other")), SECRETS)
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body, headers, URL), SECRETS)


def test_missing_signature_header_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="missing"):
        ADAPTER.verify(req(body_of("inbound_sms")), SECRETS)


@pytest.mark.parametrize("header", ["", "not base64", "é" * 28, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="])
def test_garbage_signature_header_is_rejected(header: str) -> None:
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body_of("inbound_sms"), {"X-Twilio-Signature": header}), SECRETS)


def test_body_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="UTF-8"):
        ADAPTER.verify(req(b"Body=%FF%FE", {"X-Twilio-Signature": "x"}), SECRETS)


def test_channel_without_auth_token_rejects_everything() -> None:
    body = body_of("inbound_sms")
    with pytest.raises(SignatureMismatchError, match="no auth token"):
        ADAPTER.verify(signed(body), ChannelSecrets())


# --- addressing and dedupe --------------------------------------------------------------------


def test_adapter_is_a_whole_sms_channel() -> None:
    adapter: ChannelAdapter = ADAPTER
    assert adapter.channel_type is ChannelType.SMS


@pytest.mark.parametrize("name", ["inbound_sms", "inbound_mms", "stop", "start"])
def test_inbound_message_is_addressed_to_its_to_number(name: str) -> None:
    assert ADAPTER.address_ids(req(body_of(name))) == {OUR_NUMBER}


@pytest.mark.parametrize(
    "name", ["status_sent", "status_delivered", "status_undelivered", "status_failed"]
)
def test_status_callback_is_addressed_to_its_from_number(name: str) -> None:
    # A callback about our send has From = our number, To = the customer.
    assert form_of(name)["To"] == CUSTOMER
    assert ADAPTER.address_ids(req(body_of(name))) == {OUR_NUMBER}


@pytest.mark.parametrize(
    ("to", "address"),
    [("whatsapp:+14155550100", OUR_NUMBER), ("14155550100", OUR_NUMBER), ("24365", "24365")],
)
def test_address_is_e164_or_the_short_code_as_given(to: str, address: str) -> None:
    form = form_of("inbound_sms") | {"To": to}
    assert ADAPTER.address_ids(req(encode(form))) == {address}


@pytest.mark.parametrize("field", ["MessageSid", "To", "From"])
def test_address_ids_require_the_envelope_fields(field: str) -> None:
    form = form_of("inbound_sms")
    del form[field]
    with pytest.raises(InvalidPayloadError, match=f"{field}: Field required"):
        ADAPTER.address_ids(req(encode(form)))


@pytest.mark.parametrize("body", [b"", b'{"MessageSid": "SM1"}', b"<html></html>", b"To=%FF"])
def test_address_ids_reject_what_is_not_a_twilio_form(body: bytes) -> None:
    with pytest.raises(InvalidPayloadError):
        ADAPTER.address_ids(req(body))


def test_dedupe_key_of_a_message_is_its_sid() -> None:
    key = ADAPTER.dedupe_key(req(body_of("inbound_sms")))
    assert key == "msg:SM1f0e3d2c4b5a69788796a5b4c3d2e1f0"
    reordered = encode(dict(reversed(list(form_of("inbound_sms").items()))))
    assert ADAPTER.dedupe_key(req(reordered)) == key


def test_dedupe_key_of_a_status_callback_is_sid_and_status() -> None:
    sid = "SM5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
    assert ADAPTER.dedupe_key(req(body_of("status_sent"))) == f"status:{sid}:sent"
    assert ADAPTER.dedupe_key(req(body_of("status_delivered"))) == f"status:{sid}:delivered"


def test_parse_for_another_number_is_empty() -> None:
    assert parse(body_of("inbound_sms"), "+14155550199") == []


# --- inbound messages -------------------------------------------------------------------------


def test_sms() -> None:
    message = only_message(body_of("inbound_sms"))
    assert message.provider_message_id == "SM1f0e3d2c4b5a69788796a5b4c3d2e1f0"
    assert message.provider_timestamp == NOW
    assert message.type is MessageType.TEXT
    assert message.body == "Hi! My order #4521 hasn't arrived yet. Can you check? 🙏"
    assert (message.sender.external_id, message.sender.phone) == (CUSTOMER, CUSTOMER)
    assert message.sender.name is None
    assert message.media == ()


def test_default_clock_is_utc() -> None:
    [event] = ADAPTER.parse(body_of("inbound_sms"), address_id=OUR_NUMBER)
    assert isinstance(event, InboundMessage)
    assert event.provider_timestamp.tzinfo is UTC


def test_mms_with_two_media_and_text() -> None:
    message = only_message(body_of("inbound_mms"))
    assert message.provider_message_id == "MM7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
    assert message.type is MessageType.IMAGE
    assert message.body == "Fotos da caixa amassada — chegou assim"
    image, video = message.media
    assert (image.type, image.mime_type) == (MessageType.IMAGE, "image/jpeg")
    assert (video.type, video.mime_type) == (MessageType.VIDEO, "video/mp4")
    assert image.url == form_of("inbound_mms")["MediaUrl0"]
    assert image.provider_media_id == "ME0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
    assert video.provider_media_id == "ME9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_mms_without_text_takes_the_first_media_type() -> None:
    form = form_of("inbound_mms") | {"Body": ""}
    message = only_message(encode(form))
    assert message.body is None
    assert message.type is MessageType.IMAGE


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("audio/amr", MessageType.AUDIO),
        ("video/3gpp", MessageType.VIDEO),
        ("application/pdf", MessageType.DOCUMENT),
        ("text/vcard", MessageType.DOCUMENT),
    ],
)
def test_media_type_follows_the_content_type(content_type: str, kind: MessageType) -> None:
    form = form_of("inbound_mms") | {"Body": "", "MediaContentType0": content_type}
    message = only_message(encode(form))
    assert message.type is kind
    assert message.media[0].mime_type == content_type


def test_media_promised_by_num_media_but_absent_is_malformed() -> None:
    form = form_of("inbound_mms")
    del form["MediaUrl1"]
    [event] = parse(encode(form))
    assert isinstance(event, MalformedEvent)
    assert event.reason == "MediaUrl1: Field required"


@pytest.mark.parametrize("num_media", ["two", "-1", "11"])
def test_bad_num_media_is_malformed(num_media: str) -> None:
    [event] = parse(encode(form_of("inbound_sms") | {"NumMedia": num_media}))
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith("NumMedia: ")


# --- opt-out and opt-in -----------------------------------------------------------------------


def test_stop_is_a_message_and_an_opt_out() -> None:
    message, change = parse(body_of("stop"))
    assert isinstance(message, InboundMessage) and message.body == "STOP"
    assert change == ContactChange(sender=message.sender, provider_timestamp=NOW, opted_out=True)


def test_start_is_a_message_and_an_opt_in() -> None:
    message, change = parse(body_of("start"))
    assert isinstance(message, InboundMessage)
    assert isinstance(change, ContactChange) and change.opted_out is False
    assert change.sender.external_id == CUSTOMER


@pytest.mark.parametrize(
    ("body", "opted_out"),
    [
        ("stop", True),
        (" Unsubscribe\n", True),
        ("STOPALL", True),
        ("cancel", True),
        ("End", True),
        ("quit", True),
        ("yes", False),
        ("UNSTOP", False),
    ],
)
def test_twilios_default_keywords(body: str, opted_out: bool) -> None:
    form = form_of("inbound_sms") | {"Body": body}
    _, change = parse(encode(form))
    assert isinstance(change, ContactChange) and change.opted_out is opted_out


@pytest.mark.parametrize("body", ["stop sending me this", "please stop", "started", "help"])
def test_keyword_inside_a_sentence_changes_nothing(body: str) -> None:
    form = form_of("inbound_sms") | {"Body": body}
    assert [type(e) for e in parse(encode(form))] == [InboundMessage]


def test_advanced_opt_out_type_wins_over_the_keyword_list() -> None:
    # A custom opt-out keyword configured in Twilio's Advanced Opt-Out.
    form = form_of("inbound_sms") | {"Body": "PARAR", "OptOutType": "STOP"}
    _, change = parse(encode(form))
    assert isinstance(change, ContactChange) and change.opted_out is True
    help_form = form_of("inbound_sms") | {"Body": "STOP", "OptOutType": "HELP"}
    assert [type(e) for e in parse(encode(help_form))] == [InboundMessage]


# --- status callbacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [("status_sent", DeliveryStatus.SENT), ("status_delivered", DeliveryStatus.DELIVERED)],
)
def test_delivery_status(name: str, status: DeliveryStatus) -> None:
    update = only_status(name)
    assert update.status is status
    assert update.provider_message_id == "SM5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
    assert update.recipient_id == CUSTOMER
    assert update.provider_timestamp == NOW
    assert (update.error_code, update.error_title) == (None, None)


def test_undelivered_is_failed_with_the_error_code() -> None:
    update = only_status("status_undelivered")
    assert update.status is DeliveryStatus.FAILED
    assert (update.error_code, update.error_title) == (30003, None)


def test_failed_carries_code_and_message() -> None:
    update = only_status("status_failed")
    assert update.status is DeliveryStatus.FAILED
    assert (update.error_code, update.error_title) == (30008, "Unknown error")


def test_read_from_whatsapp_over_twilio() -> None:
    form = form_of("status_delivered") | {"MessageStatus": "read", "SmsStatus": "read"}
    [update] = parse(encode(form))
    assert isinstance(update, StatusUpdate) and update.status is DeliveryStatus.READ


@pytest.mark.parametrize("status", ["queued", "accepted", "scheduled", "sending", "canceled"])
def test_intermediate_status_is_a_notice(status: str) -> None:
    form = form_of("status_sent") | {"MessageStatus": status, "SmsStatus": status}
    assert parse(encode(form)) == [ProviderNotice(title=f"status {status}")]


def test_non_numeric_error_code_is_malformed() -> None:
    [event] = parse(encode(form_of("status_failed") | {"ErrorCode": "oops"}))
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith("ErrorCode: ")


def test_blank_error_code_means_none() -> None:
    [event] = parse(encode(form_of("status_sent") | {"ErrorCode": ""}))
    assert isinstance(event, StatusUpdate) and event.error_code is None


# --- malformed --------------------------------------------------------------------------------


def test_message_without_from_is_malformed() -> None:
    body = body_of("malformed_missing_from")
    [event] = parse(body)
    assert isinstance(event, MalformedEvent)
    assert event.reason == "From: Field required"
    assert "message+without+a+sender" in event.fragment


def test_body_that_is_not_utf8_is_one_malformed_event() -> None:
    [event] = parse(b"MessageSid=SM1&Body=%FF")
    assert isinstance(event, MalformedEvent)
    assert event.reason == "body is not a UTF-8 form"


def test_malformed_fragment_is_truncated() -> None:
    form = form_of("malformed_missing_from") | {"Body": "x" * 5000}
    [event] = parse(encode(form))
    assert isinstance(event, MalformedEvent)
    assert len(event.fragment) == 2000
