"""Twilio SMS: form webhooks signed over the public URL and the sorted fields."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

from engine.events import ChannelType
from tests.support.channels.base import Customer, Expected, ProviderCase, Webhook, unique

TWILIO_NUMBER = "+14155550100"
TWILIO_ACCOUNT_SID = "AC3f8e2b9c4d5a6e7f8091a2b3c4d5e6f7"
TWILIO_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"


def twilio_signature(url: str, params: list[tuple[str, str]], token: str) -> str:
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


class Sms(ProviderCase):
    type = ChannelType.SMS
    sandbox_provider = "twilio"
    account = TWILIO_NUMBER
    callback_secret = TWILIO_AUTH_TOKEN
    delivery_history = ("sent", "delivered")
    customer = Customer(external_id="+14155550123", name=None, phone="+14155550123")

    def sent(self, request: dict[str, Any]) -> tuple[str | None, str, str]:
        form = request["form"]
        return request["account"], form["To"], form["Body"]

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return {
            "phone_number": TWILIO_NUMBER,
            "account_sid": TWILIO_ACCOUNT_SID,
            "auth_token": TWILIO_AUTH_TOKEN,
            "api_base_url": sandbox_url,
            # A toll-free number's throughput rather than a long code's 1/s: retries need not
            # queue behind the send rate.
            "rate_per_s": 25,
        }

    def form(self, url: str, params: list[tuple[str, str]]) -> Webhook:
        return Webhook(
            urlencode(params).encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(url, params, TWILIO_AUTH_TOKEN),
            },
        )

    def _inbound(self, url: str, body: str, *extra: tuple[str, str]) -> Webhook:
        sid = unique("SM")
        return self.form(
            url,
            [
                ("ToCountry", "US"),
                ("SmsMessageSid", sid),
                ("SmsSid", sid),
                ("SmsStatus", "received"),
                ("Body", body),
                ("To", TWILIO_NUMBER),
                ("MessageSid", sid),
                ("AccountSid", TWILIO_ACCOUNT_SID),
                ("From", self.customer.external_id),
                ("ApiVersion", "2010-04-01"),
                ("NumSegments", "1"),
                *extra,
            ],
        )

    def message(self, url: str, text: str) -> Webhook:
        return self._inbound(url, text, ("NumMedia", "0"))

    def stop(self, url: str) -> Webhook:
        return self._inbound(url, "STOP", ("NumMedia", "0"), ("OptOutType", "STOP"))

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        media_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages/"
            "MM7a6b5c4d/Media/ME0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
        )
        webhook = self._inbound(
            url,
            "Fotos da caixa amassada",
            ("NumMedia", "1"),
            ("MediaUrl0", media_url),
            ("MediaContentType0", "image/jpeg"),
        )
        media = [
            {
                "type": "image",
                "mime_type": "image/jpeg",
                "provider_media_id": "ME0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
            }
        ]
        return webhook, Expected("image", "Fotos da caixa amassada", media)

    def unknown(self, url: str) -> tuple[Webhook, str]:
        # A status callback for a state we do not track (a scheduled message).
        sid = unique("SM")
        params = [
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", TWILIO_ACCOUNT_SID),
            ("From", TWILIO_NUMBER),
            ("To", self.customer.external_id),
            ("MessageStatus", "scheduled"),
            ("SmsStatus", "scheduled"),
            ("ApiVersion", "2010-04-01"),
        ]
        return self.form(url, params), "status scheduled"

    def forged(self, webhook: Webhook) -> Webhook:
        return Webhook(webhook.body, {**webhook.headers, "X-Twilio-Signature": "Zm9yZ2Vk"})
