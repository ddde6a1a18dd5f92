"""Signed WhatsApp Cloud API text-message webhooks, each with its own wamid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from dataclasses import dataclass

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE = "15550783881"
APP_SECRET = "bench-app-secret-0123456789"
_TEXTS = (
    "Olá! Meu pedido #{n} ainda não chegou.",
    "Bom dia, preciso de ajuda com a fatura {n}.",
    "Vocês abrem amanhã? Pedido {n}",
    "Obrigado pelo atendimento! Protocolo {n}",
)
_FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi", "Hugo")


@dataclass(frozen=True)
class PayloadSpec:
    """What to generate: `count` bodies from `contacts` senders, numbered from `first_contact`."""

    run_tag: str
    count: int
    contacts: int
    first_contact: int = 0
    seed: int = 7
    base_timestamp: int = 1_749_416_383


def phone_of(contact: int) -> str:
    """A valid Brazilian mobile number (with the ninth digit) for a contact index."""
    return f"55119{80_000_000 + contact:08d}"


def wamid(run_tag: str, index: int) -> str:
    """A wamid-shaped id, unique per (run, index), so nothing dedupes."""
    raw = f"{run_tag}:{index}".encode()
    return "wamid." + base64.b64encode(hashlib.sha256(raw).digest()[:36]).decode().rstrip("=")


def text_body(spec: PayloadSpec, index: int, contact: int) -> bytes:
    phone = phone_of(contact)
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_PHONE,
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [
                                {
                                    "profile": {"name": f"{_FIRST_NAMES[contact % 8]} {contact}"},
                                    "wa_id": phone,
                                }
                            ],
                            "messages": [
                                {
                                    "from": phone,
                                    "id": wamid(spec.run_tag, index),
                                    "timestamp": str(spec.base_timestamp + index),
                                    "type": "text",
                                    "text": {"body": _TEXTS[index % 4].format(n=4_000 + index)},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    return json.dumps(envelope, ensure_ascii=False).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """The X-Hub-Signature-256 header Meta sends: HMAC-SHA256 of the raw bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_bodies(spec: PayloadSpec) -> list[tuple[bytes, str]]:
    """`spec.count` (body, signature) pairs; senders drawn at random (seeded) from the pool."""
    rng = random.Random(spec.seed)
    out: list[tuple[bytes, str]] = []
    for index in range(spec.count):
        contact = spec.first_contact + rng.randrange(spec.contacts)
        body = text_body(spec, index, contact)
        out.append((body, sign(body)))
    return out
