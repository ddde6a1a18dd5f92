"""LGPD/GDPR: a contact's data exported and erased over the API and the CLI, per tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx
from engine.security import hash_password
from engine.store.tenants import insert_user
from tests.privacy.webhooks import text_webhook
from tests.support.channels import Agent
from tests.support.cli import cli_env, invoke, logging_restored
from tests.support.harness import (
    RunningEngine,
    Seeded,
    seed_whatsapp,
)

PHONE = "+5511987654321"
WA_ID = "5511987654321"
BODY = "Olá! Meu pedido #4521 ainda não chegou."


@pytest.fixture
def two_tenants(clean_db: Engine, engine: RunningEngine) -> tuple[Seeded, Seeded]:
    """The same customer writing to two tenants."""
    a = seed_whatsapp(clean_db, name="Acme")
    b = seed_whatsapp(clean_db, name="Other", phone_number_id="999000111")
    assert engine.post_whatsapp(
        a.channel_id, text_webhook("106540352242922", "wamid.A1", BODY)
    ).is_success
    assert engine.post_whatsapp(
        b.channel_id, text_webhook("999000111", "wamid.B1", BODY)
    ).is_success
    engine.drain()
    return a, b


def _contact_id(db: Engine, tenant_id: int) -> int:
    with system_tx(db) as conn:
        return int(
            conn.execute(
                text("SELECT id FROM contacts WHERE tenant_id = :t AND phone = :p"),
                {"t": tenant_id, "p": PHONE},
            ).scalar_one()
        )


def _with_media_and_history(
    db: Engine, engine: RunningEngine, seeded: Seeded, contact: int
) -> Path:
    """A downloaded media file, a custom field, a tag, an outbox row and a dead letter that
    carry the customer's number, as traffic would leave them."""
    media_dir = Path(str(engine.settings.MEDIA_DIR))
    media_file = media_dir / "t" / "photo.jpg"
    media_file.parent.mkdir(parents=True, exist_ok=True)
    media_file.write_bytes(b"\xff\xd8 a photo of the customer")
    p = {"t": seeded.tenant_id, "c": contact, "wa": WA_ID}
    with system_tx(db) as conn:
        for sql in (
            "UPDATE messages SET media = jsonb_build_array(jsonb_build_object("
            "'kind', 'image', 'storage_uri', 'local:t/photo.jpg')) WHERE contact_id = :c",
            "INSERT INTO contact_custom_fields (tenant_id, contact_id, name, value) "
            "VALUES (:t, :c, 'cpf', '123.456.789-00')",
            "INSERT INTO tags (tenant_id, name) VALUES (:t, 'vip')",
            "INSERT INTO contact_tags (tenant_id, contact_id, tag_id) "
            "SELECT :t, :c, id FROM tags WHERE tenant_id = :t",
            "INSERT INTO outbox (tenant_id, topic, payload) VALUES (:t, 'realtime', "
            "jsonb_build_object('ticket', jsonb_build_object('contact_id', CAST(:c AS bigint))))",
            "INSERT INTO dead_letters (tenant_id, actor, queue, payload, error_class, "
            "error_message) VALUES (:t, 'send', 'outbound', "
            "jsonb_build_object('to', CAST(:wa AS text)), "
            "'ProviderRejectedError', 'bad number ' || CAST(:wa AS text))",
        ):
            conn.execute(text(sql), p)
    return media_file


def _agent_of_role(db: Engine, engine: RunningEngine, seeded: Seeded, role: str) -> Agent:
    email = f"{role}@acme.test"
    with system_tx(db) as conn:
        insert_user(
            conn,
            tenant_id=seeded.tenant_id,
            name=role,
            email=email,
            password_hash=hash_password("correct horse"),
            role=role,
        )
    return Agent(engine, Seeded(seeded.tenant_id, seeded.channel_id, email, "correct horse"))


def _mentions_of_the_customer(db: Engine, tenant_id: int) -> list[str]:
    """The tables of the tenant that still hold the number, the name or what was written."""
    checks = {
        "contacts": "phone = :p OR name = 'Ana Lima'",
        "contact_identities": "identity_key LIKE '%' || :wa",
        "messages": "body IS NOT NULL OR media <> '[]'",
        "contact_custom_fields": "true",
        "contact_tags": "true",
        "inbox": "position(convert_to(:wa, 'UTF8') in body) > 0",
        "outbox": "payload <> '{\"erased\": true}'",
        "dead_letters": "strpos(error_message || payload::text, :wa) > 0",
        "audit_log": "strpos(data::text, :wa) > 0",
    }
    params = {"p": PHONE, "wa": WA_ID, "t": tenant_id}
    with system_tx(db) as conn:
        return [
            table
            for table, condition in checks.items()
            if conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE ({condition}) AND tenant_id = :t"),
                params,
            ).scalar_one()
        ]


def test_an_admin_exports_everything_held_about_a_contact(
    clean_db: Engine, engine: RunningEngine, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = two_tenants
    contact = _contact_id(clean_db, a.tenant_id)
    _with_media_and_history(clean_db, engine, a, contact)
    admin = Agent(engine, a)

    export = admin.get(f"/api/v1/contacts/{contact}/export")

    assert export["contact"]["phone"] == PHONE and export["contact"]["name"] == "Ana Lima"
    assert [i["identity_key"] for i in export["identities"]] == [PHONE]
    assert [m["body"] for m in export["messages"]] == [BODY]
    assert [m["media"]["storage_uri"] for m in export["media"]] == ["local:t/photo.jpg"]
    assert export["custom_fields"] == [{"name": "cpf", "value": "123.456.789-00"}]
    assert [t["name"] for t in export["tags"]] == ["vip"]
    assert len(export["tickets"]) == 1 and export["ticket_events"]
    # Only this tenant's data: the same person wrote to another tenant too.
    assert {m["tenant_id"] for m in export["messages"]} == {a.tenant_id}
    with system_tx(clean_db) as conn:
        audited = conn.execute(
            text("SELECT user_id, data::text FROM audit_log WHERE action = 'contact.exported'")
        ).all()
    assert len(audited) == 1 and WA_ID not in audited[0][1]


def test_only_admins_may_export_or_erase(
    clean_db: Engine, engine: RunningEngine, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, b = two_tenants
    contact = _contact_id(clean_db, a.tenant_id)
    supervisor = _agent_of_role(clean_db, engine, a, "supervisor")
    assert supervisor.call("GET", f"/api/v1/contacts/{contact}/export").status_code == 403
    erase = supervisor.call("POST", f"/api/v1/contacts/{contact}/erase", json={"confirm": True})
    assert erase.status_code == 403
    other_admin = Agent(engine, b)  # another tenant's admin does not see the contact at all
    assert other_admin.call("GET", f"/api/v1/contacts/{contact}/export").status_code == 404
    erase = other_admin.call("POST", f"/api/v1/contacts/{contact}/erase", json={"confirm": True})
    assert erase.status_code == 404
    assert _mentions_of_the_customer(clean_db, a.tenant_id)  # nothing was erased


def test_erasure_needs_confirmation(
    clean_db: Engine, engine: RunningEngine, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = two_tenants
    contact = _contact_id(clean_db, a.tenant_id)
    admin = Agent(engine, a)
    for body in ({}, {"confirm": False}, {"confirm": "yes"}):
        response = admin.call("POST", f"/api/v1/contacts/{contact}/erase", json=body)
        assert response.status_code == 422, body
        assert "confirm" in response.text
    assert "contacts" in _mentions_of_the_customer(clean_db, a.tenant_id)


def test_erasure_removes_personal_data_everywhere_and_only_in_that_tenant(
    clean_db: Engine, engine: RunningEngine, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, b = two_tenants
    contact = _contact_id(clean_db, a.tenant_id)
    media_file = _with_media_and_history(clean_db, engine, a, contact)
    admin = Agent(engine, a)
    before = _mentions_of_the_customer(clean_db, a.tenant_id)
    assert set(before) >= {"contacts", "contact_identities", "messages", "inbox", "dead_letters"}

    response = admin.call("POST", f"/api/v1/contacts/{contact}/erase", json={"confirm": True})

    assert response.status_code == 200, response.text
    assert response.json()["media_files_deleted"] == 1
    assert _mentions_of_the_customer(clean_db, a.tenant_id) == []
    assert not media_file.exists()
    assert len(_mentions_of_the_customer(clean_db, b.tenant_id)) >= 4  # untouched
    # The ticket stays (statistics) and the erasure is on record, without the number.
    assert admin.only_ticket()["contact"]["id"] == contact
    with system_tx(clean_db) as conn:
        actions = (
            conn.execute(
                text("SELECT action FROM audit_log WHERE tenant_id = :t ORDER BY id"),
                {"t": a.tenant_id},
            )
            .scalars()
            .all()
        )
    assert actions == ["contact.erased"]

    again = admin.call("POST", f"/api/v1/contacts/{contact}/erase", json={"confirm": True})
    assert again.status_code == 200 and set(again.json()["counts"].values()) == {0}


def test_the_same_number_writing_again_after_erasure_is_a_new_contact(
    clean_db: Engine, engine: RunningEngine, two_tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = two_tenants
    erased = _contact_id(clean_db, a.tenant_id)
    admin = Agent(engine, a)
    assert admin.call("POST", f"/api/v1/contacts/{erased}/erase", json={"confirm": True}).is_success

    webhook = text_webhook("106540352242922", "wamid.A2", "voltei")
    assert engine.post_whatsapp(a.channel_id, webhook).is_success
    engine.drain()

    fresh = _contact_id(clean_db, a.tenant_id)
    assert fresh != erased
    assert admin.contact(fresh)["phone"] == PHONE
    assert admin.contact(erased)["phone"] is None


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, engine: RunningEngine, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    cli_env(
        monkeypatch,
        database_url=engine.settings.database_url(),
        MEDIA_DIR=str(engine.settings.MEDIA_DIR),
    )
    with logging_restored():
        yield lambda *argv: invoke(capsys, argv)


def test_the_command_line_exports_and_erases(
    clean_db: Engine, two_tenants: tuple[Seeded, Seeded], cli: Any, tmp_path: Path
) -> None:
    a, b = two_tenants
    contact = _contact_id(clean_db, a.tenant_id)
    target = ["--tenant", str(a.tenant_id), "--contact", str(contact)]

    code, out, _ = cli("contact", "export", *target)
    assert code == 0 and json.loads(out)["contact"]["phone"] == PHONE
    code, _, err = cli("contact", "export", "--tenant", str(b.tenant_id), "--contact", str(contact))
    assert code == 2 and "--contact" in err  # another tenant's contact is not found

    code, _, err = cli("contact", "export", *target, "--output", str(tmp_path / "no" / "x.json"))
    assert code == 2 and "--output" in err and "Traceback" not in err
    written = tmp_path / "export.json"
    assert cli("contact", "export", *target, "--output", str(written))[0] == 0
    assert written.stat().st_mode & 0o777 == 0o600  # personal data: the owner's alone

    code, _, err = cli("contact", "erase", *target)
    assert code == 2 and "--yes" in err
    assert "contacts" in _mentions_of_the_customer(clean_db, a.tenant_id)

    code, out, _ = cli("--json", "contact", "erase", *target, "--yes")
    assert code == 0 and json.loads(out)["counts"]["contacts"] == 1
    assert _mentions_of_the_customer(clean_db, a.tenant_id) == []
