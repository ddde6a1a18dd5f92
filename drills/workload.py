"""The webhook stream a drill sends: messages, shuffled statuses and redeliveries, each with the
effect the database must end up holding exactly once."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from bench.payloads import DISPLAY_PHONE, PHONE_NUMBER_ID, PayloadSpec, phone_of, text_body, wamid

STATUS_ORDER = ("sent", "delivered", "read")
DUPLICATE_SHARE = 0.10  # of all posts: redeliveries, half byte-identical, half re-enveloped
STATUS_SHARE = 0.15  # of the distinct posts: delivery statuses, three per outbound message

# An effect the database must hold once: ("message", wamid) or ("status", wamid, status).
Effect = tuple[str, ...]


@dataclass(frozen=True)
class Post:
    """One webhook body and the effect it carries."""

    body: bytes
    effect: Effect


@dataclass(frozen=True)
class Workload:
    posts: list[Post]
    contacts: int
    outbound_ids: list[str]  # provider ids of the outbound messages the statuses are about

    @property
    def effects(self) -> set[Effect]:
        return {p.effect for p in self.posts}


def build_workload(events: int, *, contacts: int, run_tag: str, seed: int = 11) -> Workload:
    """`events` posts across `contacts` senders. Statuses of one outbound message arrive in a
    shuffled order (a late `sent` after `read`); redeliveries come later in the stream."""
    rng = random.Random(seed)
    spec = PayloadSpec(run_tag=run_tag, count=events, contacts=contacts)
    duplicates = int(events * DUPLICATE_SHARE)
    distinct = events - duplicates
    status_groups = int(distinct * STATUS_SHARE) // len(STATUS_ORDER)
    messages = distinct - status_groups * len(STATUS_ORDER)
    posts = [
        Post(text_body(spec, i, rng.randrange(contacts)), ("message", wamid(run_tag, i)))
        for i in range(messages)
    ]
    outbound_ids = [wamid(f"{run_tag}:out", group) for group in range(status_groups)]
    for group, out_id in enumerate(outbound_ids):
        order = list(STATUS_ORDER)
        rng.shuffle(order)
        recipient = phone_of(rng.randrange(contacts))
        posts += [
            Post(status_body(out_id, s, recipient, group), ("status", out_id, s)) for s in order
        ]
    rng.shuffle(posts)
    for n in range(duplicates):
        original = posts[rng.randrange(len(posts) - n)]
        body = original.body if n % 2 else reenvelope(original.body)
        posts.insert(rng.randrange(len(posts) // 2, len(posts) + 1), Post(body, original.effect))
    return Workload(posts, contacts, outbound_ids)


def status_body(provider_id: str, status: str, recipient: str, group: int) -> bytes:
    """A Cloud API status webhook for one outbound message."""
    value: dict[str, object] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_PHONE, "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [
            {
                "id": provider_id,
                "status": status,
                "timestamp": str(1_749_416_383 + 10 * group + STATUS_ORDER.index(status)),
                "recipient_id": recipient,
            }
        ],
    }
    return _envelope(value)


def reenvelope(body: bytes) -> bytes:
    """The same events in different bytes (another batch entry id): passes the inbox's
    byte-level dedupe, so only the per-message unique keys stop a second effect."""
    envelope = json.loads(body)
    envelope["entry"][0]["id"] = "102290129340399"
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def _envelope(value: dict[str, object]) -> bytes:
    entry = {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}
    envelope = {"object": "whatsapp_business_account", "entry": [entry]}
    return json.dumps(envelope).encode()
