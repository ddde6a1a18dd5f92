"""WhatsApp Cloud API webhook bodies for the demo, built from Meta's documented shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

# One piece of a raw provider body on its way out over HTTP (the adapter's input, not ours).
Part = dict[str, object]


@dataclass(frozen=True)
class BusinessNumber:
    """The business side of a webhook: the channel's phone_number_id and its account."""

    phone_number_id: str
    display_phone_number: str
    waba_id: str


def sign(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header Meta computes: HMAC-SHA256 of the raw bytes."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def wamid(rng: random.Random, wa_id: str, *, outbound: bool = False) -> str:
    """A message id shaped like Meta's: base64 of the customer's number and a random key."""
    key = rng.randbytes(9 if outbound else 11).hex().upper()
    direction = b"\x11\x18\x12" if outbound else b"\x12\x18\x16"
    raw = b"\x1c\x18" + bytes([len(wa_id)]) + wa_id.encode() + b"\x15\x02\x00" + direction
    return "wamid." + base64.b64encode(raw + key.encode() + b"\x00").decode()


def media_id(rng: random.Random) -> str:
    return str(rng.randrange(10**15, 10**16))


def media_sha256(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(32)).decode()


def envelope(entries: Sequence[Sequence[Part]], *, business: BusinessNumber) -> bytes:
    """A whole webhook body: one entry per list of changes."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": business.waba_id, "changes": list(changes)} for changes in entries],
    }
    return json.dumps(body, ensure_ascii=False).encode()


def change(
    business: BusinessNumber,
    *,
    profiles: Sequence[tuple[str, str]] = (),
    messages: Sequence[Part] = (),
    statuses: Sequence[Part] = (),
    errors: Sequence[Part] = (),
) -> Part:
    """One `messages` change; `profiles` are (name, wa_id) of the senders."""
    value: Part = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": business.display_phone_number,
            "phone_number_id": business.phone_number_id,
        },
    }
    if profiles:
        value["contacts"] = [{"profile": {"name": n}, "wa_id": w} for n, w in profiles]
    for name, items in (("messages", messages), ("statuses", statuses), ("errors", errors)):
        if items:
            value[name] = list(items)
    return {"value": value, "field": "messages"}


def message(
    kind: str,
    block: object | None,
    *,
    sender: str,
    message_id: str,
    timestamp: int,
    context: Part | None = None,
    referral: Part | None = None,
    errors: Sequence[Part] = (),
) -> Part:
    """A customer's message of `kind`, whose typed block (if the kind has one) is `block`."""
    part: Part = {"from": sender, "id": message_id, "timestamp": str(timestamp), "type": kind}
    if context is not None:
        part["context"] = context
    if referral is not None:
        part["referral"] = referral
    if errors:
        part["errors"] = list(errors)
    if block is not None:
        part[kind] = block
    return part


def status(
    message_id: str, state: str, *, recipient: str, timestamp: int, error: Part | None = None
) -> Part:
    """A delivery status of an outbound message (sent, delivered, read or failed)."""
    part: Part = {
        "id": message_id,
        "status": state,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if state in ("sent", "delivered"):
        part["conversation"] = {
            "id": hashlib.md5(message_id.encode(), usedforsecurity=False).hexdigest(),
            "expiration_timestamp": str(timestamp + 86_400),
            "origin": {"type": "service"},
        }
        part["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "category": "service",
            "type": "regular",
        }
    if error is not None:
        part["errors"] = [error]
    return part


def error(code: int, title: str, details: str) -> Part:
    """An error object as Meta nests it in messages, statuses and change values."""
    return {"code": code, "title": title, "message": title, "error_data": {"details": details}}
