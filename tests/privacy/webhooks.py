"""WhatsApp text webhooks from the sample payload, to drive the engine in these tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.harness import fixture_bytes


def text_webhook(phone_number_id: str, wamid: str, body: str) -> dict[str, Any]:
    """The sample WhatsApp text message, sent to `phone_number_id` with this id and body."""
    payload: dict[str, Any] = json.loads(fixture_bytes("whatsapp", "text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    message = copy.deepcopy(value["messages"][0])
    message["id"], message["text"]["body"] = wamid, body
    value["messages"] = [message]
    return payload
