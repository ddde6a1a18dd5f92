"""SQL and HTML injection strings in every text field are stored and shown exactly, and inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.channels import Agent
from tests.support.harness import RunningEngine, fixture_bytes, running_engine, seed_whatsapp

PAYLOADS = [
    "'; DROP TABLE contacts; --",
    'Robert"); DELETE FROM messages WHERE (1=1',
    "' OR '1'='1",
    "$$; SELECT pg_sleep(30); $$",
    "%_\\ LIKE '%' ESCAPE",
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "{{7*7}} ${7*7} #{7*7}",
    "ção 😀 \u202eevil",
]


@pytest.fixture
def engine(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        yield running


def _webhook(index: int, name: str, body: str) -> bytes:
    doc = json.loads(fixture_bytes("whatsapp", "text.json"))
    value = doc["entry"][0]["changes"][0]["value"]
    wa_id = f"55119876543{index:02d}"
    value["contacts"][0]["profile"]["name"] = name
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message["from"], message["id"], message["text"]["body"] = wa_id, f"wamid.inj{index}", body
    return json.dumps(doc).encode()


def test_injection_strings_round_trip_from_webhook_to_api(
    clean_db: Engine, engine: RunningEngine
) -> None:
    seeded = seed_whatsapp(clean_db)
    for i, text in enumerate(PAYLOADS):
        assert engine.post_whatsapp(seeded.channel_id, _webhook(i, text, text)).status_code == 200
    engine.drain()
    admin = Agent(engine, seeded)

    tickets = admin.tickets()
    assert sorted(t["contact"]["name"] for t in tickets) == sorted(PAYLOADS)
    bodies = sorted(m["body"] for t in tickets for m in admin.messages(t["id"]))
    assert bodies == sorted(PAYLOADS)
    assert count(clean_db, "SELECT count(*) FROM contacts") == len(PAYLOADS)  # tables intact
    for text in PAYLOADS:  # searching for them is just a search
        response = admin.call("GET", f"/api/v1/contacts?{urlencode({'search': text})}")
        assert response.status_code == 200, text
        assert text in [c["name"] for c in response.json()["items"]]


def test_injection_strings_round_trip_through_every_named_resource(
    clean_db: Engine, engine: RunningEngine
) -> None:
    admin = Agent(engine, seed_whatsapp(clean_db))
    for i, text in enumerate(PAYLOADS):
        tag = admin.call("POST", "/api/v1/tags", json={"name": text})
        queue = admin.call("POST", "/api/v1/queues", json={"name": text})
        reply = admin.call("POST", "/api/v1/fast-replies", json={"shortcut": f"s{i}", "body": text})
        contact = admin.call(
            "POST",
            "/api/v1/contacts",
            json={"name": text, "custom_fields": {text[:100]: text}},
        )
        for response in (tag, queue, contact):
            assert response.status_code == 201, response.text
        assert admin.get(f"/api/v1/tags/{tag.json()['id']}")["name"] == text
        assert admin.get(f"/api/v1/queues/{queue.json()['id']}")["name"] == text
        if "{{" in text:  # fast replies are templates: an unknown variable is named, not stored
            assert reply.status_code == 422 and "body" in reply.text
        else:
            assert reply.status_code == 201, reply.text
            assert admin.get(f"/api/v1/fast-replies/{reply.json()['id']}")["body"] == text
        card = admin.get(f"/api/v1/contacts/{contact.json()['id']}")
        assert card["name"] == text
        assert card["custom_fields"] == {text[:100]: text}
