"""End to end: signed WhatsApp webhooks over HTTP → broker → worker → rows a user would see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.harness import (
    RunningEngine,
    fixture_bytes,
    running_engine,
    seed_whatsapp,
)
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def engine_up(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        yield running


def test_text_message_becomes_ticket_contact_and_message(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    response = engine_up.post_whatsapp(seeded.channel_id, fixture_bytes("whatsapp", "text.json"))
    assert response.status_code == 200
    engine_up.drain()
    assert (
        count(
            clean_db, "SELECT count(*) FROM tickets WHERE status = 'pending' AND unread_count = 1"
        )
        == 1
    )
    assert (
        count(clean_db, "SELECT count(*) FROM messages WHERE direction = 'in' AND type = 'text'")
        == 1
    )
    assert count(clean_db, "SELECT count(*) FROM contacts WHERE phone LIKE '+55%'") == 1
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'processed'") == 1
    assert count(clean_db, "SELECT count(*) FROM ticket_events WHERE type = 'created'") == 1


def test_same_webhook_five_times_concurrently_yields_one_of_each(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    body = fixture_bytes("whatsapp", "text.json")
    with ThreadPoolExecutor(5) as pool:
        codes = list(
            pool.map(
                lambda _: engine_up.post_whatsapp(seeded.channel_id, body).status_code, range(5)
            )
        )
    for _ in range(5):
        codes.append(engine_up.post_whatsapp(seeded.channel_id, body).status_code)
    assert codes == [200] * 10
    engine_up.drain()
    assert count(clean_db, "SELECT count(*) FROM messages") == 1
    assert count(clean_db, "SELECT count(*) FROM tickets") == 1
    assert count(clean_db, "SELECT count(*) FROM inbox") == 1


def test_same_message_in_different_envelopes_is_stored_once(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    engine_up.post_whatsapp(seeded.channel_id, payload)
    payload["entry"][0]["id"] = "another-envelope"  # different bytes, same message id
    engine_up.post_whatsapp(seeded.channel_id, payload)
    engine_up.drain()
    assert count(clean_db, "SELECT count(*) FROM inbox") == 2
    assert count(clean_db, "SELECT count(*) FROM messages") == 1
    assert count(clean_db, "SELECT unread_count FROM tickets") == 1


def test_forged_signature_is_rejected_and_nothing_stored(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    response = engine_up.post_whatsapp(
        seeded.channel_id, fixture_bytes("whatsapp", "text.json"), secret="not-the-secret"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0


def test_not_json_is_400_and_unknown_phone_number_is_404(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    assert engine_up.post_whatsapp(seeded.channel_id, b"{not json").status_code == 400
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999"
    assert engine_up.post_whatsapp(seeded.channel_id, payload).status_code == 404
    assert engine_up.post_whatsapp(seeded.channel_id + 1000, payload).status_code == 404
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0


def test_other_tenants_phone_number_is_not_routed_across_tenants(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    a = seed_whatsapp(clean_db, name="A")
    seed_whatsapp(clean_db, name="B", phone_number_id="106540352242923")
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "106540352242923"
    # Signed with A's secret, posted to A's URL, addressed to B's number: must not land in B.
    assert engine_up.post_whatsapp(a.channel_id, payload).status_code == 404
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0


def test_verification_handshake(engine_up: RunningEngine, clean_db: Engine) -> None:
    seeded = seed_whatsapp(clean_db)
    with engine_up.client() as c:
        ok = c.get(
            f"/webhooks/whatsapp/{seeded.channel_id}",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": "test-verify-token",
                "hub.challenge": "1158201444",
            },
        )
        bad = c.get(
            f"/webhooks/whatsapp/{seeded.channel_id}",
            params={"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "x"},
        )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert bad.status_code == 403


def test_malformed_message_dead_letters_and_keeps_its_neighbour(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    assert (
        engine_up.post_whatsapp(
            seeded.channel_id, fixture_bytes("whatsapp", "malformed_message.json")
        ).status_code
        == 200
    )
    engine_up.drain()
    assert count(clean_db, "SELECT count(*) FROM messages") == 1
    assert (
        count(
            clean_db,
            "SELECT count(*) FROM dead_letters WHERE error_class = 'InvalidPayloadError' "
            "AND error_message LIKE '%from%'",
        )
        == 1
    )
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'partial'") == 1


def test_brazil_ninth_digit_variants_are_one_contact(
    engine_up: RunningEngine, clean_db: Engine
) -> None:
    seeded = seed_whatsapp(clean_db)
    for wa_id, mid in (("5511987654321", "wamid.A1"), ("551187654321", "wamid.A2")):
        payload = json.loads(fixture_bytes("whatsapp", "text.json"))
        value = payload["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = wa_id
        value["messages"][0]["from"] = wa_id
        value["messages"][0]["id"] = mid
        assert engine_up.post_whatsapp(seeded.channel_id, payload).status_code == 200
    engine_up.drain()
    assert count(clean_db, "SELECT count(*) FROM contacts") == 1
    assert count(clean_db, "SELECT count(*) FROM tickets") == 1
    assert count(clean_db, "SELECT unread_count FROM tickets") == 2


def test_database_down_answers_503_and_nothing_is_lost(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    proxy = TcpProxy("127.0.0.1", 5432)
    web_url = database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    try:
        with running_engine(
            database_url=database_url,
            redis_url=redis_url,
            queue_prefix=queue_prefix,
            web_database_url=web_url,
        ) as running:
            body = fixture_bytes("whatsapp", "text.json")
            assert running.post_whatsapp(seeded.channel_id, body).status_code == 200
            proxy.cut()
            payload = json.loads(body)
            payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.during-outage"
            assert running.post_whatsapp(seeded.channel_id, payload).status_code == 503
            proxy.restore()
            # The provider retries after a 503; this time the event is kept and processed.
            assert running.post_whatsapp(seeded.channel_id, payload).status_code == 200
            running.drain()
    finally:
        proxy.close()
    assert count(clean_db, "SELECT count(*) FROM messages") == 2
