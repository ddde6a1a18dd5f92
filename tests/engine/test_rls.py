"""Row-level security on the real database: a forgotten tenant filter returns nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from engine.db import APP_ROLE, SCHEMA_VERSION, apply_schema, system_tx, tenant_tx
from engine.store import conversations as conv
from tests.support.harness import seed_whatsapp

TENANT_TABLES = ("contacts", "tickets", "messages", "channels", "users")


def _seed_conversation(conn: Connection, tenant_id: int, channel_id: int, phone: str) -> None:
    contact = conv.upsert_contact(
        conn,
        tenant_id=tenant_id,
        channel_type="whatsapp",
        identity_key=phone,
        external_id=phone.lstrip("+"),
        name="Someone",
        phone=phone,
    )
    ticket = conv.find_or_create_ticket(
        conn, tenant_id=tenant_id, channel_id=channel_id, contact_id=contact.id
    )
    conv.store_inbound_messages(
        conn,
        [
            conv.NewInboundMessage(
                tenant_id=tenant_id,
                ticket_id=ticket.id,
                contact_id=contact.id,
                channel_id=channel_id,
                type="text",
                body="hello",
                media_json="[]",
                location_json=None,
                shared_contacts_json=None,
                referral_json=None,
                reply_id=None,
                quoted_provider_message_id=None,
                provider_message_id=f"wamid.{tenant_id}.{phone}",
                provider_timestamp=datetime.now(UTC),
                error_code=None,
                error_message=None,
            )
        ],
    )


@pytest.fixture
def two_tenants(clean_db: Engine) -> tuple[int, int]:
    a = seed_whatsapp(clean_db, name="A", phone_number_id="1001")
    b = seed_whatsapp(clean_db, name="B", phone_number_id="1002")
    with system_tx(clean_db) as conn:
        _seed_conversation(conn, a.tenant_id, a.channel_id, "+5511987654321")
        _seed_conversation(conn, b.tenant_id, b.channel_id, "+5511987654321")
        _seed_conversation(conn, b.tenant_id, b.channel_id, "+5521987654321")
    return a.tenant_id, b.tenant_id


def _counts(conn: Connection) -> dict[str, int]:
    return {
        t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TENANT_TABLES
    }


def test_engine_connections_act_as_the_app_role(db: Engine) -> None:
    with db.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
        bypass = conn.execute(
            text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).scalar_one()
    assert bypass is False


def test_no_scope_sees_nothing_although_rows_exist(
    clean_db: Engine, two_tenants: tuple[int, int]
) -> None:
    with system_tx(clean_db) as conn:
        assert _counts(conn) == {
            "contacts": 3,
            "tickets": 3,
            "messages": 3,
            "channels": 2,
            "users": 2,
        }
    with clean_db.begin() as conn:
        assert _counts(conn) == dict.fromkeys(TENANT_TABLES, 0)
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 0


def test_tenant_scope_sees_only_its_own_rows(
    clean_db: Engine, two_tenants: tuple[int, int]
) -> None:
    a, b = two_tenants
    with tenant_tx(clean_db, a) as conn:
        assert _counts(conn) == {
            "contacts": 1,
            "tickets": 1,
            "messages": 1,
            "channels": 1,
            "users": 1,
        }
        seen = {
            r[0]
            for t in TENANT_TABLES
            for r in conn.execute(text(f"SELECT DISTINCT tenant_id FROM {t}"))
        }
        assert seen == {a}
        assert conn.execute(text("SELECT array_agg(id) FROM tenants")).scalar_one() == [a]
        # Even asking for B by id finds nothing.
        assert (
            conn.execute(
                text("SELECT count(*) FROM tickets WHERE tenant_id = :b"), {"b": b}
            ).scalar_one()
            == 0
        )
    with tenant_tx(clean_db, b) as conn:
        assert _counts(conn) == {
            "contacts": 2,
            "tickets": 2,
            "messages": 2,
            "channels": 1,
            "users": 1,
        }


def test_writing_another_tenants_row_is_refused(
    clean_db: Engine, two_tenants: tuple[int, int]
) -> None:
    a, b = two_tenants
    with pytest.raises(DBAPIError) as info, tenant_tx(clean_db, a) as conn:
        conn.execute(
            text("INSERT INTO contacts (tenant_id, name, phone) VALUES (:b, 'Intruder', NULL)"),
            {"b": b},
        )
    assert isinstance(info.value.orig, psycopg.errors.InsufficientPrivilege)
    assert "row-level security" in str(info.value.orig)
    # Moving one of A's rows over to B is refused the same way.
    with pytest.raises(DBAPIError) as info, tenant_tx(clean_db, a) as conn:
        conn.execute(text("UPDATE contacts SET tenant_id = :b"), {"b": b})
    assert isinstance(info.value.orig, psycopg.errors.InsufficientPrivilege)
    # Updating or deleting B's rows from A silently touches nothing.
    with tenant_tx(clean_db, a) as conn:
        hit = conn.execute(text("DELETE FROM contacts WHERE tenant_id = :b"), {"b": b}).rowcount
    assert hit == 0
    with system_tx(clean_db) as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM contacts WHERE tenant_id = :b"), {"b": b}
            ).scalar_one()
            == 2
        )
        assert (
            conn.execute(text("SELECT count(*) FROM contacts WHERE name = 'Intruder'")).scalar_one()
            == 0
        )


def test_tenant_scope_ends_with_its_transaction(
    clean_db: Engine, two_tenants: tuple[int, int]
) -> None:
    a, _ = two_tenants
    with tenant_tx(clean_db, a) as conn:
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 1
    # The pooled connection comes back without A's scope.
    for _ in range(3):
        with clean_db.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 0


SCHEMA_DUMP = [
    "SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check "
    "FROM pg_policies WHERE schemaname = current_schema() ORDER BY 1, 2",
    "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 3",
    "SELECT tablename, indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = current_schema() ORDER BY 1, 2",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2",
    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
    "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' ORDER BY 1",
    "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
    "WHERE grantee = 'flowdesk_app' AND table_schema = current_schema() ORDER BY 1, 2",
    "SELECT count(*), max(version) FROM schema_migrations",
]


def _dump(database_url: str) -> list[list[tuple[object, ...]]]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        return [conn.execute(q).fetchall() for q in SCHEMA_DUMP]


def test_applying_the_schema_again_changes_nothing(
    database_url: str, clean_db: Engine, two_tenants: tuple[int, int]
) -> None:
    before = _dump(database_url)
    assert before[0], "policies exist"
    assert apply_schema(database_url) == SCHEMA_VERSION
    assert apply_schema(database_url) == SCHEMA_VERSION
    assert _dump(database_url) == before
    with system_tx(clean_db) as conn:  # data survives a re-apply
        assert _counts(conn)["messages"] == 3
