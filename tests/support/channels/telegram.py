"""Telegram Bot API: updates carrying the secret token given to setWebhook."""

from __future__ import annotations

import time
from typing import Any

from engine.events import ChannelType
from tests.support.channels.base import Customer, Expected, ProviderCase, Webhook, to_json, unique

TELEGRAM_BOT_ID = "7012345678"
TELEGRAM_TOKEN = f"{TELEGRAM_BOT_ID}:AAHe2eSandboxTokenAbcdefghijklmnopq"
TELEGRAM_SECRET = "e2e-telegram-secret"
TELEGRAM_GROUP_ID = -4012345678


class Telegram(ProviderCase):
    type = ChannelType.TELEGRAM
    sandbox_provider = "telegram"
    account = TELEGRAM_BOT_ID
    customer = Customer(external_id="123456789", name="Ana Lima")

    def sent(self, request: dict[str, Any]) -> tuple[str | None, str, str]:
        body = request["json"]
        return request["account"], str(body["chat_id"]), body["text"]

    _user = {"id": 123456789, "is_bot": False, "first_name": "Ana", "last_name": "Lima"}

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        return {
            "bot_token": TELEGRAM_TOKEN,
            "webhook_secret": TELEGRAM_SECRET,
            "api_base_url": sandbox_url,
        }

    def _update(self, **update: Any) -> Webhook:
        body = to_json({"update_id": int(unique("")[-9:]), **update})
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        }
        return Webhook(body, headers)

    def _message(self, chat: dict[str, Any], **content: Any) -> Webhook:
        message_id = int(unique("")[-6:])
        message = {"message_id": message_id, "from": self._user, "chat": chat}
        return self._update(message={**message, "date": int(time.time()), **content})

    def message(self, url: str, text: str) -> Webhook:
        chat = {"id": 123456789, "first_name": "Ana", "last_name": "Lima", "type": "private"}
        return self._message(chat, text=text)

    def group_message(self, text: str) -> Webhook:
        chat = {"id": TELEGRAM_GROUP_ID, "title": "Clientes VIP", "type": "group"}
        return self._message(chat, text=text)

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        chat = {"id": 123456789, "first_name": "Ana", "last_name": "Lima", "type": "private"}
        photo = [
            {"file_id": "AgACsmall", "file_unique_id": "s", "width": 90, "height": 67},
            {"file_id": "AgAClarge", "file_unique_id": "l", "width": 1280, "height": 960},
        ]
        return (
            self._message(chat, photo=photo, caption="Foto da caixa amassada"),
            Expected("image", "Foto da caixa amassada", [{"type": "image"}]),
        )

    def unknown(self, url: str) -> tuple[Webhook, str]:
        poll = {"id": "5", "question": "?", "options": [], "total_voter_count": 0}
        return self._update(poll=poll), "unsupported update poll"

    def forged(self, webhook: Webhook) -> Webhook:
        return Webhook(
            webhook.body, {**webhook.headers, "X-Telegram-Bot-Api-Secret-Token": "guessed"}
        )
