"""E-mail: Mailgun route POSTs (signed token) and SendGrid Inbound Parse (basic auth)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from engine.events import ChannelType
from tests.support.channels.base import Customer, Expected, ProviderCase, Webhook, unique

SUPPORT_ADDRESS = "support@help.acme.test"
MAILGUN_SIGNING_KEY = "key-e2e-mailgun-signing"
SENDGRID_SECRET = "e2e-sendgrid-parse-secret"


def mailgun_fields(fields: list[tuple[str, str]], key: str = MAILGUN_SIGNING_KEY) -> Webhook:
    timestamp = str(int(time.time()))
    token = hashlib.sha256(unique("token").encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    signed = [*fields, ("timestamp", timestamp), ("token", token), ("signature", signature)]
    return Webhook(
        urlencode(signed).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )


class MailgunEmail(ProviderCase):
    type = ChannelType.EMAIL
    sandbox_provider = "smtp"
    customer = Customer(
        external_id="ana.lima@example.com", name="Ana Lima", email="ana.lima@example.com"
    )
    subject = "Pedido #4521 atrasado"
    # A mail is one event: one that cannot be read is malformed, so dead-lettered.
    unknown_status = "dead"

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return {
            "address": SUPPORT_ADDRESS,
            "inbound_provider": "mailgun",
            "signing_key": MAILGUN_SIGNING_KEY,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_starttls": False,
        }

    def mail(self, text: str, *, message_id: str | None = None) -> tuple[Webhook, str]:
        """A signed route POST and the Message-ID it carries (without brackets)."""
        message_id = message_id or f"{unique('CAF8x')}@mail.example.com"
        fields = [
            ("recipient", SUPPORT_ADDRESS),
            ("sender", self.customer.external_id),
            ("from", f"Ana Lima <{self.customer.external_id}>"),
            ("To", f"ACME Suporte <{SUPPORT_ADDRESS}>"),
            ("subject", self.subject),
            ("body-plain", f"{text}\r\n\r\nAna\r\n"),
            ("stripped-text", text),
            ("Message-Id", f"<{message_id}>"),
            ("Date", format_datetime(datetime.now(UTC))),
        ]
        return mailgun_fields(fields), message_id

    def message(self, url: str, text: str) -> Webhook:
        return self.mail(text)[0]

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        webhook, _ = self.mail("Olá! Meu pedido #4521 ainda não chegou.")
        return webhook, Expected("email", "Olá! Meu pedido #4521 ainda não chegou.", [])

    def unknown(self, url: str) -> tuple[Webhook, str]:
        # Addressed to us and signed, but naming no sender: no contact can be made of it.
        fields = [("recipient", SUPPORT_ADDRESS), ("subject", "?"), ("body-plain", "?")]
        return mailgun_fields(fields), "from: no sender address"

    def forged(self, webhook: Webhook) -> Webhook:
        # The same mail, re-signed with a key that is not the channel's.
        fields = parse_qsl(webhook.body.decode(), keep_blank_values=True)
        unsigned = [(k, v) for k, v in fields if k not in {"timestamp", "token", "signature"}]
        return mailgun_fields(unsigned, key="key-not-the-signing-key")


def multipart(fields: list[tuple[str, str]], boundary: str = "xYzZY") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def basic_auth(secret: str) -> str:
    return "Basic " + base64.b64encode(f"sendgrid:{secret}".encode()).decode()


class SendGridEmail(MailgunEmail):
    customer = Customer(
        external_id="carla.dias@example.org", name="Carla Dias", email="carla.dias@example.org"
    )
    subject = "Troca do tênis"

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return {
            "address": SUPPORT_ADDRESS,
            "inbound_provider": "sendgrid",
            "webhook_secret": SENDGRID_SECRET,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_starttls": False,
        }

    def parse_post(self, fields: list[tuple[str, str]], secret: str = SENDGRID_SECRET) -> Webhook:
        return Webhook(
            multipart(fields),
            {
                "Content-Type": "multipart/form-data; boundary=xYzZY",
                "Authorization": basic_auth(secret),
            },
        )

    def mail(self, text: str, *, message_id: str | None = None) -> tuple[Webhook, str]:
        message_id = message_id or f"{unique('CAH3k')}@mail.example.org"
        sender = f"Carla Dias <{self.customer.external_id}>"
        headers = "\r\n".join(
            [
                "MIME-Version: 1.0",
                f"From: {sender}",
                f"Date: {format_datetime(datetime.now(UTC))}",
                f"Message-ID: <{message_id}>",
                f"Subject: {self.subject}",
                f"To: ACME Suporte <{SUPPORT_ADDRESS}>",
            ]
        )
        envelope = {"to": [SUPPORT_ADDRESS], "from": self.customer.external_id}
        fields = [
            ("headers", headers),
            ("to", f"ACME Suporte <{SUPPORT_ADDRESS}>"),
            ("from", sender),
            ("subject", self.subject),
            ("text", text),
            ("envelope", json.dumps(envelope)),
            ("charsets", json.dumps({"to": "UTF-8", "subject": "UTF-8", "text": "UTF-8"})),
        ]
        return self.parse_post(fields), message_id

    def unknown(self, url: str) -> tuple[Webhook, str]:
        envelope = {"to": [SUPPORT_ADDRESS]}
        fields = [("headers", "Subject: ?"), ("envelope", json.dumps(envelope)), ("text", "?")]
        return self.parse_post(fields), "from: no sender address"

    def forged(self, webhook: Webhook) -> Webhook:
        return Webhook(
            webhook.body, {**webhook.headers, "Authorization": basic_auth("not-the-secret")}
        )
