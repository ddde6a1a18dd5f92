"""Provider sandbox: each provider's shapes, faults, signed status callbacks and the SMTP sink."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from adapters.sandbox import Sandbox

WA_BODY = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "5511987654321",
    "type": "text",
    "text": {"body": "hello"},
}
BEARER = {"Authorization": "Bearer sandbox-token"}
BOT = "123456:AAE-sandbox_token"
TWILIO_SID = "AC" + "0" * 32
TWILIO_AUTH = (TWILIO_SID, "auth-token")
TWILIO_FORM = {"To": "+15551230001", "From": "+15559870002", "Body": "hello"}


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    sandbox.state.reset()
    with httpx.Client(base_url=sandbox.http_url, timeout=5.0) as http:
        yield http


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver on a free port, standing in for the engine."""

    def __init__(self) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        inbox = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                inbox.put(Received(self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def take(self, n: int, timeout_s: float = 5.0) -> list[Received]:
        return [self.received.get(timeout=timeout_s) for _ in range(n)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(token: str, url: str, body: bytes) -> str:
    params = parse_qsl(body.decode(), keep_blank_values=True)
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def wait_for_deliveries(client: httpx.Client, n: int) -> list[dict[str, Any]]:
    """The callback log once it holds `n` attempts (each is logged after its answer)."""
    deadline = time.monotonic() + 5
    while len(deliveries := client.get("/_sandbox/callbacks/deliveries").json()) < n:
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.02)
    return list(deliveries)


def add_fault(client: httpx.Client, **spec: Any) -> None:
    response = client.post("/_sandbox/faults", json=spec)
    assert response.status_code == 201, response.text


# -- Graph API -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v21.0/106540352242922/messages", "/106540352242922/messages"])
def test_whatsapp_send_answers_contacts_and_wamid(client: httpx.Client, path: str) -> None:
    response = client.post(path, json=WA_BODY, headers=BEARER)
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "5511987654321", "wa_id": "5511987654321"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    [recorded] = client.get("/_sandbox/requests", params={"provider": "whatsapp"}).json()
    assert recorded["account"] == "106540352242922"
    assert recorded["json"] == WA_BODY
    assert recorded["message_id"] == body["messages"][0]["id"]


def test_whatsapp_mark_as_read_answers_success(client: httpx.Client) -> None:
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
    response = client.post("/v21.0/1/messages", json=read, headers=BEARER)
    assert response.json() == {"success": True}


def test_graph_send_without_token_is_oauth_error(client: httpx.Client) -> None:
    response = client.post("/v21.0/1/messages", json=WA_BODY)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "OAuthException"
    assert error["code"] == 190
    assert error["fbtrace_id"]


def test_messenger_send_answers_recipient_and_mid(client: httpx.Client) -> None:
    body = {"recipient": {"id": "24000000001"}, "messaging_type": "RESPONSE", "message": {}}
    response = client.post("/v21.0/9001/messages", json=body, headers=BEARER)
    assert response.status_code == 200
    answer = response.json()
    assert answer["recipient_id"] == "24000000001"
    assert answer["message_id"].startswith("m_")
    assert client.get("/_sandbox/requests").json()[0]["provider"] == "messenger"


def test_messenger_accepts_access_token_query_param(client: httpx.Client) -> None:
    body = {"recipient": {"id": "1"}, "message": {"text": "hi"}}
    response = client.post("/v21.0/me/messages", params={"access_token": "t"}, json=body)
    assert response.status_code == 200


def test_instagram_send_under_instagram_prefix(client: httpx.Client) -> None:
    body = {"recipient": {"id": "17840000000001"}, "message": {"text": "hi"}}
    response = client.post("/instagram/v21.0/17841400000000/messages", json=body, headers=BEARER)
    assert response.status_code == 200
    assert response.json()["message_id"].startswith("m_")
    assert client.get("/_sandbox/requests").json()[0]["provider"] == "instagram"


def test_whatsapp_media_lookup_and_download(client: httpx.Client) -> None:
    info = client.get("/v21.0/1234567890", headers=BEARER).json()
    assert info["id"] == "1234567890"
    assert info["mime_type"] == "image/jpeg"
    assert info["url"] == f"{client.base_url}/media/1234567890".replace("//media", "/media")
    data = client.get(info["url"], headers=BEARER)
    assert data.status_code == 200
    assert data.content.startswith(b"\xff\xd8")
    assert hashlib.sha256(data.content).hexdigest() == info["sha256"]
    assert len(data.content) == info["file_size"]
    assert client.get(info["url"]).status_code == 401


# -- Telegram ------------------------------------------------------------------------------


def test_telegram_message_ids_increase_per_chat(client: httpx.Client) -> None:
    def send(chat_id: int) -> dict[str, Any]:
        response = client.post(f"/bot{BOT}/sendMessage", json={"chat_id": chat_id, "text": "x"})
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        assert body["ok"] is True
        result: dict[str, Any] = body["result"]
        return result

    first, second, other = send(42), send(42), send(43)
    assert (first["message_id"], second["message_id"], other["message_id"]) == (1, 2, 1)
    assert first["chat"] == {"id": 42, "type": "private"}
    assert first["text"] == "x"
    assert isinstance(first["date"], int)


def test_telegram_send_photo_by_form_with_caption(client: httpx.Client) -> None:
    form = {"chat_id": "42", "photo": "https://example.com/a.jpg", "caption": "look"}
    result = client.post(f"/bot{BOT}/sendPhoto", data=form).json()["result"]
    assert result["caption"] == "look"
    assert result["photo"][0]["file_id"]
    [recorded] = client.get("/_sandbox/requests", params={"provider": "telegram"}).json()
    assert recorded["form"] == form
    assert recorded["path"] == "/bot123456:<redacted>/sendPhoto"
    assert recorded["account"] == "123456"


def test_telegram_multipart_upload_is_summarised_not_stored(client: httpx.Client) -> None:
    files = {"document": ("report.pdf", b"%PDF-1.4 sandbox", "application/pdf")}
    response = client.post(f"/bot{BOT}/sendDocument", data={"chat_id": "42"}, files=files)
    assert response.json()["result"]["document"]["file_id"]
    [recorded] = client.get("/_sandbox/requests").json()
    assert recorded["form"] == {"chat_id": "42", "document": "<upload report.pdf: 16 bytes>"}


def test_telegram_get_file_then_download(client: httpx.Client) -> None:
    result = client.post(f"/bot{BOT}/getFile", json={"file_id": "AgACAgQ"}).json()["result"]
    assert result["file_path"] == "photos/AgACAgQ.jpg"
    data = client.get(f"/file/bot{BOT}/{result['file_path']}")
    assert data.status_code == 200
    assert len(data.content) == result["file_size"]
    assert client.get(f"/bot{BOT}/getFile", params={"file_id": "AgACAgQ"}).json()["ok"]


def test_telegram_bad_token_and_unknown_method(client: httpx.Client) -> None:
    bad = client.post("/botnot-a-token/sendMessage", json={"chat_id": 1, "text": "x"})
    assert (bad.status_code, bad.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert client.post(f"/bot{BOT}/noSuchMethod").json()["error_code"] == 404


# -- Twilio --------------------------------------------------------------------------------


def test_twilio_create_message_is_201_queued(client: httpx.Client) -> None:
    url = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    response = client.post(url, data=TWILIO_FORM, auth=TWILIO_AUTH)
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert int(body["sid"][2:], 16) >= 0
    assert (body["status"], body["to"], body["from"], body["body"]) == (
        "queued",
        "+15551230001",
        "+15559870002",
        "hello",
    )
    assert body["account_sid"] == TWILIO_SID
    [recorded] = client.get("/_sandbox/requests", params={"account": "+15559870002"}).json()
    assert recorded["form"] == TWILIO_FORM


def test_twilio_requires_basic_auth(client: httpx.Client) -> None:
    url = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    response = client.post(url, data=TWILIO_FORM)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_twilio_missing_to_is_21604(client: httpx.Client) -> None:
    url = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    response = client.post(url, data={"From": "+1555", "Body": "x"}, auth=TWILIO_AUTH)
    assert (response.status_code, response.json()["code"]) == (400, 21604)


def test_twilio_mms_media_download(client: httpx.Client) -> None:
    url = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/MM1/Media/ME1"
    response = client.get(url, auth=TWILIO_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\xff\xd8")


# -- faults --------------------------------------------------------------------------------


def _whatsapp(client: httpx.Client) -> httpx.Response:
    return client.post("/v21.0/1/messages", json=WA_BODY, headers=BEARER)


def _messenger(client: httpx.Client) -> httpx.Response:
    body = {"recipient": {"id": "7"}, "message": {"text": "hi"}}
    return client.post("/v21.0/9001/messages", json=body, headers=BEARER)


def _instagram(client: httpx.Client) -> httpx.Response:
    body = {"recipient": {"id": "7"}, "message": {"text": "hi"}}
    return client.post("/instagram/v21.0/1784/messages", json=body, headers=BEARER)


def _telegram(client: httpx.Client) -> httpx.Response:
    return client.post(f"/bot{BOT}/sendMessage", json={"chat_id": -1, "text": "x"})


def _twilio(client: httpx.Client) -> httpx.Response:
    url = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    return client.post(url, data=TWILIO_FORM, auth=TWILIO_AUTH)


SENDERS = {
    "whatsapp": _whatsapp,
    "messenger": _messenger,
    "instagram": _instagram,
    "telegram": _telegram,
    "twilio": _twilio,
}
GRAPH_CASES = [
    ("whatsapp", "rate_limit", {}, 429, 130429, None),
    ("whatsapp", "server_error", {}, 500, 131000, None),
    ("whatsapp", "permanent", {}, 400, 131026, None),
    ("whatsapp", "permanent", {"code": 131047}, 400, 131047, None),
    ("messenger", "rate_limit", {}, 429, 613, None),
    ("messenger", "server_error", {}, 503, 2, None),
    ("messenger", "permanent", {}, 400, 551, 1545041),
    ("instagram", "permanent", {"code": 10}, 400, 10, 2018278),
]


@pytest.mark.parametrize(("provider", "mode", "extra", "status", "code", "subcode"), GRAPH_CASES)
def test_graph_faults_use_meta_error_shape_and_clear_after_count(
    client: httpx.Client,
    provider: str,
    mode: str,
    extra: dict[str, Any],
    status: int,
    code: int,
    subcode: int | None,
) -> None:
    add_fault(client, provider=provider, mode=mode, count=2, retry_after_s=7, **extra)
    send = SENDERS[provider]
    for _ in range(2):
        response = send(client)
        assert response.status_code == status
        error = response.json()["error"]
        assert (error["type"], error["code"], error.get("error_subcode")) == (
            "OAuthException",
            code,
            subcode,
        )
        assert error["message"] and error["fbtrace_id"]
        if provider == "whatsapp":
            assert error["error_data"]["messaging_product"] == "whatsapp"
        if mode == "rate_limit":
            assert response.headers["retry-after"] == "7"
    assert send(client).status_code == 200
    faults = [r["fault"] for r in client.get("/_sandbox/requests").json()]
    assert faults == [mode, mode, None]


TELEGRAM_CASES = [
    (
        "rate_limit",
        {"retry_after_s": 5},
        429,
        "Too Many Requests: retry after 5",
        {"retry_after": 5},
    ),
    ("server_error", {}, 500, "Internal Server Error", None),
    ("permanent", {}, 403, "Forbidden: bot was blocked by the user", None),
    ("permanent", {"code": 400}, 400, "Bad Request: chat not found", None),
    (
        "migrate",
        {"migrate_to_chat_id": -1009876},
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": -1009876},
    ),
]


@pytest.mark.parametrize(("mode", "extra", "status", "description", "parameters"), TELEGRAM_CASES)
def test_telegram_faults_use_bot_api_error_shape(
    client: httpx.Client,
    mode: str,
    extra: dict[str, Any],
    status: int,
    description: str,
    parameters: dict[str, int] | None,
) -> None:
    add_fault(client, provider="telegram", mode=mode, **extra)
    response = _telegram(client)
    assert response.status_code == status
    expected: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters is not None:
        expected["parameters"] = parameters
    assert response.json() == expected
    assert _telegram(client).json()["ok"] is True


TWILIO_CASES = [
    ("rate_limit", {}, 429, 20429),
    ("server_error", {}, 500, 20500),
    ("permanent", {}, 400, 21211),
    ("permanent", {"code": 21610}, 400, 21610),
]


@pytest.mark.parametrize(("mode", "extra", "status", "code"), TWILIO_CASES)
def test_twilio_faults_use_rest_error_shape(
    client: httpx.Client, mode: str, extra: dict[str, Any], status: int, code: int
) -> None:
    add_fault(client, provider="twilio", mode=mode, **extra)
    response = _twilio(client)
    assert response.status_code == status
    body = response.json()
    assert (body["code"], body["status"]) == (code, status)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]
    assert _twilio(client).status_code == 201


def test_unbounded_fault_lasts_until_cleared(client: httpx.Client) -> None:
    add_fault(client, provider="telegram", mode="server_error", count=-1)
    assert [_telegram(client).status_code for _ in range(4)] == [500] * 4
    assert client.delete("/_sandbox/faults").status_code == 204
    assert _telegram(client).status_code == 200


def test_faults_apply_in_order_and_only_to_their_provider(client: httpx.Client) -> None:
    add_fault(client, provider="whatsapp", mode="rate_limit")
    add_fault(client, provider="whatsapp", mode="server_error")
    assert _telegram(client).status_code == 200
    assert [_whatsapp(client).status_code for _ in range(3)] == [429, 500, 200]
    assert client.get("/_sandbox/faults").json() == []


def test_slow_fault_delays_then_succeeds(client: httpx.Client) -> None:
    add_fault(client, provider="twilio", mode="slow", delay_ms=400)
    started = time.monotonic()
    assert _twilio(client).status_code == 201
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert _twilio(client).status_code == 201
    assert time.monotonic() - started < 0.4


def test_slow_fault_makes_a_short_client_timeout_expire(client: httpx.Client) -> None:
    add_fault(client, provider="whatsapp", mode="slow", delay_ms=1000)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v21.0/1/messages", json=WA_BODY, headers=BEARER, timeout=0.2)


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "whatsapp", "mode": "migrate"},
        {"provider": "telegram", "mode": "rate_limit", "count": 0},
        {"provider": "fax", "mode": "rate_limit"},
        {"provider": "twilio", "mode": "explode"},
        {"provider": "twilio", "mode": "slow", "surprise": 1},
    ],
)
def test_bad_fault_specs_are_422(client: httpx.Client, spec: dict[str, Any]) -> None:
    response = client.post("/_sandbox/faults", json=spec)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid FaultSpec"


# -- status callbacks ----------------------------------------------------------------------


def _register(client: httpx.Client, **spec: Any) -> None:
    response = client.post("/_sandbox/callbacks", json={"delay_ms": 10, **spec})
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()


def test_whatsapp_status_callbacks_are_signed_and_ordered(
    client: httpx.Client, receiver: Receiver
) -> None:
    _register(
        client,
        provider="whatsapp",
        account="106540352242922",
        url=f"{receiver.url}/webhooks/whatsapp",
        secret="app-secret",
    )
    wamid = _whatsapp_to(client, "106540352242922")
    delivered, read = receiver.take(2)
    for got, status in ((delivered, "delivered"), (read, "read")):
        assert got.path == "/webhooks/whatsapp"
        assert got.headers["x-hub-signature-256"] == meta_signature("app-secret", got.body)
        envelope = json.loads(got.body)
        assert envelope["object"] == "whatsapp_business_account"
        [change] = envelope["entry"][0]["changes"]
        assert change["field"] == "messages"
        assert change["value"]["metadata"]["phone_number_id"] == "106540352242922"
        [entry] = change["value"]["statuses"]
        assert (entry["id"], entry["status"], entry["recipient_id"]) == (
            wamid,
            status,
            "5511987654321",
        )
        assert entry["timestamp"].isdigit()
    deliveries = wait_for_deliveries(client, 2)
    assert [(d["status"], d["http_status"]) for d in deliveries] == [
        ("delivered", 200),
        ("read", 200),
    ]


def _whatsapp_to(client: httpx.Client, account: str) -> str:
    response = client.post(f"/v21.0/{account}/messages", json=WA_BODY, headers=BEARER)
    wamid: str = response.json()["messages"][0]["id"]
    return wamid


def test_whatsapp_failed_status_carries_error(client: httpx.Client, receiver: Receiver) -> None:
    _register(
        client,
        provider="whatsapp",
        account="555",
        url=receiver.url,
        secret="s",
        statuses=["sent", "failed"],
        error_code=131047,
    )
    _whatsapp_to(client, "555")
    _, failed = receiver.take(2)
    [entry] = json.loads(failed.body)["entry"][0]["changes"][0]["value"]["statuses"]
    assert entry["status"] == "failed"
    assert entry["errors"][0]["code"] == 131047


def test_messenger_delivery_and_read_callbacks(client: httpx.Client, receiver: Receiver) -> None:
    _register(client, provider="messenger", account="9001", url=receiver.url, secret="page-secret")
    mid = _messenger(client).json()["message_id"]
    delivery, read = receiver.take(2)
    for got in (delivery, read):
        assert got.headers["x-hub-signature-256"] == meta_signature("page-secret", got.body)
    delivery_event = json.loads(delivery.body)
    assert delivery_event["object"] == "page"
    [event] = delivery_event["entry"][0]["messaging"]
    assert event["sender"] == {"id": "7"} and event["recipient"] == {"id": "9001"}
    assert event["delivery"]["mids"] == [mid]
    assert isinstance(event["delivery"]["watermark"], int)
    [read_event] = json.loads(read.body)["entry"][0]["messaging"]
    assert isinstance(read_event["read"]["watermark"], int)


def test_instagram_read_callback_names_the_mid(client: httpx.Client, receiver: Receiver) -> None:
    _register(
        client,
        provider="instagram",
        account="1784",
        url=receiver.url,
        secret="s",
        statuses=["read"],
    )
    body = {"recipient": {"id": "7"}, "message": {"text": "hi"}}
    # No /instagram prefix: a registered Instagram account is recognised by its id.
    mid = client.post("/v21.0/1784/messages", json=body, headers=BEARER).json()["message_id"]
    [read] = receiver.take(1)
    envelope = json.loads(read.body)
    assert envelope["object"] == "instagram"
    assert envelope["entry"][0]["messaging"][0]["read"] == {"mid": mid}


def test_twilio_status_callbacks_are_signed_forms(client: httpx.Client, receiver: Receiver) -> None:
    url = f"{receiver.url}/webhooks/twilio/status"
    _register(client, provider="twilio", account="+15559870002", url=url, secret="auth-token")
    sid = _twilio(client).json()["sid"]
    sent, delivered = receiver.take(2)
    for got, status in ((sent, "sent"), (delivered, "delivered")):
        assert got.headers["content-type"] == "application/x-www-form-urlencoded"
        assert got.headers["x-twilio-signature"] == twilio_signature("auth-token", url, got.body)
        form = dict(parse_qsl(got.body.decode()))
        assert form["MessageSid"] == sid
        assert form["MessageStatus"] == status
        assert (form["To"], form["From"], form["AccountSid"]) == (
            "+15551230001",
            "+15559870002",
            TWILIO_SID,
        )
        assert "ErrorCode" not in form


def test_twilio_undelivered_callback_has_error_code(
    client: httpx.Client, receiver: Receiver
) -> None:
    _register(
        client,
        provider="twilio",
        account="+15559870002",
        url=receiver.url,
        secret="t",
        statuses=["undelivered"],
        error_code=30005,
    )
    _twilio(client)
    [got] = receiver.take(1)
    form = dict(parse_qsl(got.body.decode()))
    assert (form["MessageStatus"], form["ErrorCode"]) == ("undelivered", "30005")


def test_failing_callback_receiver_is_logged_not_fatal(client: httpx.Client) -> None:
    closed = Receiver()
    url = closed.url
    closed.close()
    _register(client, provider="twilio", account="+15559870002", url=url, secret="t")
    assert _twilio(client).status_code == 201
    deliveries = wait_for_deliveries(client, 2)
    assert all(d["http_status"] is None and d["error"] for d in deliveries)
    assert _twilio(client).status_code == 201


def test_no_callbacks_without_registration_or_after_a_fault(
    client: httpx.Client, receiver: Receiver
) -> None:
    _whatsapp_to(client, "unregistered")
    _register(client, provider="whatsapp", account="1", url=receiver.url, secret="s")
    add_fault(client, provider="whatsapp", mode="permanent")
    assert _whatsapp(client).status_code == 400
    time.sleep(0.2)
    assert receiver.received.empty()


def test_callback_spec_rejects_statuses_the_provider_never_sends(client: httpx.Client) -> None:
    spec = {"provider": "messenger", "account": "1", "url": "http://x", "secret": "s"}
    response = client.post("/_sandbox/callbacks", json={**spec, "statuses": ["failed"]})
    assert response.status_code == 422


# -- SMTP sink -----------------------------------------------------------------------------


def _mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "support@flowdesk.test"
    message["To"] = "customer@example.com"
    message["Subject"] = "Your ticket #42"
    message.set_content("We are on it.")
    return message


def test_smtp_sink_records_messages(client: httpx.Client, sandbox: Sandbox) -> None:
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as smtp:
        smtp.login("user", "password")
        refused = smtp.send_message(_mail())
    assert refused == {}
    [mail] = client.get("/_sandbox/mail").json()
    assert mail["mail_from"] == "support@flowdesk.test"
    assert mail["rcpt_tos"] == ["customer@example.com"]
    assert mail["subject"] == "Your ticket #42"
    assert mail["headers"]["To"] == "customer@example.com"
    assert "We are on it." in mail["raw"]
    assert sandbox.state.mail()[0].raw.startswith(b"From: support@flowdesk.test")
    assert client.delete("/_sandbox/mail").status_code == 204
    assert client.get("/_sandbox/mail").json() == []


@pytest.mark.parametrize(
    ("mode", "extra", "code"),
    [
        ("rate_limit", {}, 451),
        ("server_error", {}, 451),
        ("permanent", {}, 550),
        ("permanent", {"code": 554}, 554),
    ],
)
def test_smtp_faults_refuse_data(
    client: httpx.Client, sandbox: Sandbox, mode: str, extra: dict[str, Any], code: int
) -> None:
    add_fault(client, provider="smtp", mode=mode, **extra)
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.send_message(_mail())
        assert refused.value.smtp_code == code
        assert smtp.send_message(_mail()) == {}
    assert len(client.get("/_sandbox/mail").json()) == 1


def test_smtp_slow_fault_delays(client: httpx.Client, sandbox: Sandbox) -> None:
    add_fault(client, provider="smtp", mode="slow", delay_ms=300)
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as smtp:
        smtp.send_message(_mail())
    assert time.monotonic() - started >= 0.3


# -- control API and runner ----------------------------------------------------------------


def test_requests_filter_and_clear(client: httpx.Client) -> None:
    _whatsapp(client)
    _telegram(client)
    assert [r["provider"] for r in client.get("/_sandbox/requests").json()] == [
        "whatsapp",
        "telegram",
    ]
    assert len(client.get("/_sandbox/requests", params={"account": "123456"}).json()) == 1
    assert client.delete("/_sandbox/requests").status_code == 204
    assert client.get("/_sandbox/requests").json() == []


def test_reset_forgets_faults_and_callbacks(client: httpx.Client) -> None:
    add_fault(client, provider="twilio", mode="rate_limit", count=-1)
    _register(client, provider="twilio", account="+1", url="http://127.0.0.1:9", secret="s")
    assert client.post("/_sandbox/reset").status_code == 204
    assert client.get("/_sandbox/faults").json() == []
    assert client.get("/_sandbox/callbacks").json() == []


def test_sandbox_on_a_taken_port_fails_to_start(sandbox: Sandbox) -> None:
    port = int(sandbox.http_url.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="did not start"):
        Sandbox(port=port).start()


def test_run_sandbox_serves_until_sigterm() -> None:
    code = (
        "from adapters.sandbox import run_sandbox\n"
        "run_sandbox(0, 0, on_ready=lambda s: print(s.http_url, s.smtp_port, flush=True))\n"
    )
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert process.stdout is not None
        url, smtp_port = process.stdout.readline().split()
        assert httpx.get(f"{url}/_sandbox/health", timeout=5).json() == {"ok": True}
        with smtplib.SMTP("127.0.0.1", int(smtp_port), timeout=5) as smtp:
            assert smtp.noop()[0] == 250
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
