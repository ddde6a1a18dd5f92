"""Meta's channels (WhatsApp Cloud API, Messenger, Instagram): X-Hub-Signature-256 webhooks."""

from __future__ import annotations

import time
from typing import Any

from engine.events import ChannelType
from tests.support.channels.base import Customer, Expected, ProviderCase, Webhook, to_json, unique
from tests.support.harness import sign

META_APP_SECRET = "e2e-meta-app-secret"
META_TOKEN = "e2e-page-access-token"
META_VERIFY_TOKEN = "e2e-verify-token"


def _meta_webhook(document: object, secret: str = META_APP_SECRET) -> Webhook:
    body = to_json(document)
    return Webhook(
        body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
    )


def _meta_forged(webhook: Webhook) -> Webhook:
    return Webhook(
        webhook.body, {**webhook.headers, "X-Hub-Signature-256": sign(webhook.body, "x")}
    )


def _meta_setup(sandbox_url: str, **ids: str) -> dict[str, Any]:
    return {
        "access_token": META_TOKEN,
        "app_secret": META_APP_SECRET,
        "verify_token": META_VERIFY_TOKEN,
        "api_base_url": sandbox_url,
        **ids,
    }


class WhatsApp(ProviderCase):
    type = ChannelType.WHATSAPP
    sandbox_provider = "whatsapp"
    phone_number_id = "106540352242922"
    account = phone_number_id
    callback_secret = META_APP_SECRET
    delivery_history = ("sent", "delivered", "read")
    customer = Customer(external_id="5511987654321", name="Ana Lima", phone="+5511987654321")

    def sent(self, request: dict[str, Any]) -> tuple[str | None, str, str]:
        body = request["json"]
        return request["account"], body["to"], body["text"]["body"]

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return _meta_setup(f"{sandbox_url}/v21.0", phone_number_id=self.phone_number_id)

    def _envelope(self, value: dict[str, Any], field: str = "messages") -> Webhook:
        metadata = {"display_phone_number": "15550783881", "phone_number_id": self.phone_number_id}
        change = {"value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
        return _meta_webhook(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{**change, "field": field}]}],
            }
        )

    def _from_customer(self, message: dict[str, Any]) -> Webhook:
        wa_id = self.customer.external_id
        return self._envelope(
            {
                "contacts": [{"profile": {"name": self.customer.name}, "wa_id": wa_id}],
                "messages": [
                    {
                        "from": wa_id,
                        "id": unique("wamid.E2E"),
                        "timestamp": str(int(time.time())),
                        **message,
                    }
                ],
            }
        )

    def message(self, url: str, text: str) -> Webhook:
        return self._from_customer({"type": "text", "text": {"body": text}})

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        image = {
            "caption": "Foto da caixa amassada",
            "mime_type": "image/jpeg",
            "sha256": "ZLLDDE6ZzXJCeHtQ3lUa0WNDt9fKdFMYSHy3Nf6VCx4=",
            "id": "1003383421387256",
        }
        media = [{"type": "image", "mime_type": "image/jpeg", "provider_media_id": image["id"]}]
        return (
            self._from_customer({"type": "image", "image": image}),
            Expected("image", "Foto da caixa amassada", media),
        )

    def unknown(self, url: str) -> tuple[Webhook, str]:
        # A documented field the engine does not handle (marketing opt-outs), for our number.
        wa_id = self.customer.external_id
        preference = {
            "wa_id": wa_id,
            "detail": "User requested to stop marketing messages",
            "category": "marketing_messages",
            "value": "stop",
            "timestamp": int(time.time()),
        }
        value = {
            "contacts": [{"profile": {"name": self.customer.name}, "wa_id": wa_id}],
            "user_preferences": [preference],
        }
        return self._envelope(value, field="user_preferences"), "unsupported field user_preferences"

    def forged(self, webhook: Webhook) -> Webhook:
        return _meta_forged(webhook)


class Messenger(ProviderCase):
    type = ChannelType.MESSENGER
    sandbox_provider = "messenger"
    webhook_object = "page"
    account = "107358231245512"
    callback_secret = META_APP_SECRET
    delivery_history = ("sent", "delivered", "read")
    customer = Customer(external_id="6683514961756203", name=None)

    def sent(self, request: dict[str, Any]) -> tuple[str | None, str, str]:
        body = request["json"]
        return request["account"], body["recipient"]["id"], body["message"]["text"]

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return _meta_setup(f"{sandbox_url}/v21.0", page_id=self.account)

    def _entry(self, **part: Any) -> Webhook:
        now_ms = int(time.time() * 1000)
        return _meta_webhook(
            {"object": self.webhook_object, "entry": [{"id": self.account, "time": now_ms, **part}]}
        )

    def _from_customer(self, message: dict[str, Any]) -> Webhook:
        item = {
            "sender": {"id": self.customer.external_id},
            "recipient": {"id": self.account},
            "timestamp": int(time.time() * 1000),
            "message": {"mid": unique("m_E2E"), **message},
        }
        return self._entry(messaging=[item])

    def message(self, url: str, text: str) -> Webhook:
        return self._from_customer({"text": text})

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        attachment = {
            "type": "image",
            "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/448117020_n.jpg"},
        }
        return (
            self._from_customer({"attachments": [attachment]}),
            Expected("image", None, [{"type": "image"}]),
        )

    def unknown(self, url: str) -> tuple[Webhook, str]:
        # Page feed changes reach the same URL; they are not conversations.
        change = {"field": "feed", "value": {"item": "status", "verb": "add", "post_id": "1_2"}}
        return self._entry(changes=[change]), "unsupported field feed"

    def forged(self, webhook: Webhook) -> Webhook:
        return _meta_forged(webhook)


class Instagram(Messenger):
    type = ChannelType.INSTAGRAM
    sandbox_provider = "instagram"
    webhook_object = "instagram"
    account = "17841405793187218"
    customer = Customer(external_id="1254459154682919", name=None)

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        # Instagram Login: graph.instagram.com, which the sandbox serves under /instagram.
        return _meta_setup(f"{sandbox_url}/instagram/v21.0", ig_account_id=self.account)

    def unknown(self, url: str) -> tuple[Webhook, str]:
        change = {"field": "comments", "value": {"id": "17865799348089039", "text": "Lindo!"}}
        return self._entry(changes=[change]), "unsupported field comments"
