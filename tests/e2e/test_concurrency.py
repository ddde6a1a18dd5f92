"""One live ticket per contact, one contact per person, even when every webhook races."""

from __future__ import annotations

import json
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx, tenant_tx
from engine.store import conversations as conv
from tests.conftest import count
from tests.support.harness import fixture_bytes, running_engine, seed_whatsapp, sign, wait_until

HOT_NEW = "5511987654321"  # the contact who writes a lot, in the 13-digit form…
HOT_OLD = "551187654321"  # …and the same person in the old 12-digit form WhatsApp still uses
HOT_E164 = "+5511987654321"
OTHERS = 30
BASE_TS = 1_749_416_383


def text_webhook(wa_id: str, wamid: str, timestamp: int, *, envelope: str = "") -> bytes:
    payload: dict[str, Any] = json.loads(fixture_bytes("whatsapp", "text.json"))
    if envelope:
        payload["entry"][0]["id"] = envelope
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message["from"] = wa_id
    message["id"] = wamid
    message["timestamp"] = str(timestamp)
    message["text"]["body"] = f"message {wamid}"
    return json.dumps(payload).encode()


def other_contact(i: int) -> tuple[str, str]:
    """(E.164, 12-digit old form) of the i-th other Brazilian mobile."""
    subscriber = f"8{i:07d}"
    return f"+55219{subscriber}", f"5521{subscriber}"


def seed_returning_contact(db: Engine, tenant_id: int, channel_id: int, phone: str) -> None:
    """A contact we already know whose last ticket was closed: the next message opens one."""
    with tenant_tx(db, tenant_id) as conn:
        contact = conv.upsert_contact(
            conn,
            tenant_id=tenant_id,
            channel_type="whatsapp",
            identity_key=phone,
            external_id=phone.lstrip("+"),
            name="Ana Lima",  # as in the webhooks, so no contact row lock serialises them
            phone=phone,
        )
        ticket = conv.find_or_create_ticket(
            conn, tenant_id=tenant_id, channel_id=channel_id, contact_id=contact.id
        )
        conn.execute(
            text("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = :id"),
            {"id": ticket.id},
        )


def build_burst() -> tuple[list[bytes], dict[str, int], int]:
    """(bodies in random order, distinct messages per E.164 number, exact redeliveries)."""
    bodies: list[bytes] = []
    expected: dict[str, int] = {}
    for n in range(150):  # the hot contact, in both forms of the number
        wa_id = HOT_OLD if n % 3 == 0 else HOT_NEW
        bodies.append(text_webhook(wa_id, f"wamid.hot.{n}", BASE_TS + n))
    expected[HOT_E164] = 150
    for i in range(OTHERS):  # 30 other people, 5 messages each, in both forms too
        e164, old = other_contact(i)
        for n in range(5):
            wa_id = old if n % 2 else e164.lstrip("+")
            bodies.append(text_webhook(wa_id, f"wamid.c{i}.{n}", BASE_TS + n))
        expected[e164] = 5
    # Redeliveries: identical bytes, and the same message in another envelope.
    redelivered = bodies[::10]
    bodies += redelivered
    bodies += [
        text_webhook(HOT_NEW, f"wamid.hot.{n}", BASE_TS + n, envelope="other-envelope")
        for n in range(0, 150, 15)
    ]
    random.Random(7).shuffle(bodies)
    return bodies, expected, len(redelivered)


def test_racing_webhooks_keep_one_ticket_per_contact_and_count_every_message(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="actors")
    seeded = seed_whatsapp(clean_db)
    # The hot contact and half the others come back after a closed ticket; the rest are new.
    returning = [HOT_E164] + [other_contact(i)[0] for i in range(0, OTHERS, 2)]
    for phone in returning:
        seed_returning_contact(clean_db, seeded.tenant_id, seeded.channel_id, phone)
    bodies, expected, redelivered = build_burst()

    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        worker_threads=8,
        start_worker=False,  # started once every webhook is queued, so its threads collide
        INGEST_BATCH_MAX="1",  # every webhook becomes its own actor message…
        INGEST_BATCH_WAIT_MS="0",
        PIPELINE_BATCH_MAX="1",  # …and so would every row the sweeper re-offers
    ) as running:
        # One shared client: building an httpx.Client per request costs more than the request.
        with running.client() as client, ThreadPoolExecutor(16) as pool:

            def post(body: bytes) -> int:
                return client.post(
                    f"/webhooks/whatsapp/{seeded.channel_id}",
                    content=body,
                    headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
                ).status_code

            codes = list(pool.map(post, bodies))
        assert codes == [200] * len(bodies)
        assert count(clean_db, "SELECT count(*) FROM inbox") == len(bodies) - redelivered
        assert running.worker is not None
        running.worker.start()
        wait_until(
            lambda: count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 0,
            what="every inbox row processed",
        )
        running.drain()

    assert count(clean_db, "SELECT count(*) FROM dead_letters") == 0
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status <> 'processed'") == 0
    # Colliding workers waited for each other; none failed and had to be retried.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

    with system_tx(clean_db) as conn:
        per_contact = {
            r.phone: (r.live, r.unread, r.messages, r.on_live)
            for r in conn.execute(
                text(
                    """
                    SELECT c.phone,
                        (SELECT count(*) FROM tickets t WHERE t.contact_id = c.id
                           AND t.status IN ('pending', 'open')) AS live,
                        (SELECT sum(unread_count) FROM tickets t WHERE t.contact_id = c.id
                           AND t.status IN ('pending', 'open')) AS unread,
                        (SELECT count(*) FROM messages m WHERE m.contact_id = c.id) AS messages,
                        (SELECT count(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id
                           WHERE m.contact_id = c.id AND t.status = 'pending') AS on_live
                    FROM contacts c
                    """
                )
            )
        }
        duplicates = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT provider_message_id FROM messages "
                "GROUP BY channel_id, provider_message_id HAVING count(*) > 1) d"
            )
        ).scalar_one()
        identities = conn.execute(
            text("SELECT count(*), count(DISTINCT contact_id) FROM contact_identities")
        ).one()

    assert set(per_contact) == set(expected)  # one contact per person, in E.164
    for phone, n in expected.items():
        assert per_contact[phone] == (1, n, n, n), phone
    assert duplicates == 0
    assert tuple(identities) == (OTHERS + 1, OTHERS + 1)
    assert count(clean_db, "SELECT count(*) FROM tickets WHERE status = 'closed'") == len(returning)
    assert count(clean_db, "SELECT count(*) FROM ticket_events WHERE type = 'created'") == 31
    assert count(clean_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def test_concurrent_find_or_create_ticket_returns_one_ticket(clean_db: Engine) -> None:
    seeded = seed_whatsapp(clean_db)
    with tenant_tx(clean_db, seeded.tenant_id) as conn:
        contact = conv.upsert_contact(
            conn,
            tenant_id=seeded.tenant_id,
            channel_type="whatsapp",
            identity_key=HOT_E164,
            external_id=HOT_NEW,
            name="Ana",
            phone=HOT_E164,
        )
    threads = 8
    barrier = threading.Barrier(threads)
    never = threading.Event()

    def race(_: int) -> conv.TicketRef:
        with tenant_tx(clean_db, seeded.tenant_id) as conn:
            conn.execute(text("SELECT 1"))  # connected and in the transaction before the race
            barrier.wait(timeout=10)
            ref = conv.find_or_create_ticket(
                conn,
                tenant_id=seeded.tenant_id,
                channel_id=seeded.channel_id,
                contact_id=contact.id,
            )
            if ref.created:
                # Commit late, so the others really meet an uncommitted row in the index.
                never.wait(0.3)
            return ref

    with ThreadPoolExecutor(threads) as pool:
        refs = list(pool.map(race, range(threads)))

    assert len({r.id for r in refs}) == 1
    assert sum(r.created for r in refs) == 1
    assert len({r.protocol for r in refs}) == 1
    assert count(clean_db, "SELECT count(*) FROM tickets") == 1
