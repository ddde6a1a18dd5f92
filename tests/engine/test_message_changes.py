"""Message changes in the store: one unfinished change per message, claims that lease, and the
sweeper's view of changes whose broker message was lost."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx, tenant_tx
from engine.events import ChannelType
from engine.store.message_changes import (
    claim_change,
    release_change,
    request_change,
    settle_change,
    stale_changes,
)
from engine.store.scheduled_messages import MessageStateError
from tests.support.harness import seed_whatsapp


def everything(_type: ChannelType, _kind: str) -> bool:
    return True


@pytest.fixture
def sent(clean_db: Engine) -> tuple[int, int]:
    """(tenant id, message id) of an outgoing message the provider holds."""
    seeded = seed_whatsapp(clean_db)
    with tenant_tx(clean_db, seeded.tenant_id) as conn:
        params = {"t": seeded.tenant_id, "ch": seeded.channel_id}
        contact = conn.execute(
            text("INSERT INTO contacts (tenant_id, name) VALUES (:t, 'Ana') RETURNING id"), params
        ).scalar_one()
        ticket = conn.execute(
            text(
                "INSERT INTO tickets (tenant_id, channel_id, contact_id, protocol) "
                "VALUES (:t, :ch, :c, 'P-1') RETURNING id"
            ),
            {**params, "c": contact},
        ).scalar_one()
        message = conn.execute(
            text(
                "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, "
                "type, body, status, provider_message_id) "
                "VALUES (:t, :tk, :c, :ch, 'out', 'text', 'old', 'delivered', 'wamid.1') "
                "RETURNING id"
            ),
            {**params, "c": contact, "tk": ticket},
        ).scalar_one()
    return seeded.tenant_id, int(message)


def request(db: Engine, tenant_id: int, message_id: int, body: str = "new") -> int:
    with tenant_tx(db, tenant_id) as conn:
        return request_change(
            conn,
            tenant_id=tenant_id,
            message_id=message_id,
            user_id=None,
            kind="edit",
            body=body,
            supports=everything,
        ).change_id


def test_a_second_change_waits_for_the_first(clean_db: Engine, sent: tuple[int, int]) -> None:
    tenant_id, message_id = sent
    first = request(clean_db, tenant_id, message_id)
    with pytest.raises(MessageStateError, match="change under way"):
        request(clean_db, tenant_id, message_id)
    with tenant_tx(clean_db, tenant_id) as conn:
        job = claim_change(conn, tenant_id=tenant_id, change_id=first)
        assert job is not None
        settle_change(conn, job, error_code="400", error_message="refused")
    request(clean_db, tenant_id, message_id)  # a settled change no longer blocks


def test_a_claim_is_held_until_released_or_settled(clean_db: Engine, sent: tuple[int, int]) -> None:
    tenant_id, message_id = sent
    change_id = request(clean_db, tenant_id, message_id)
    with tenant_tx(clean_db, tenant_id) as conn:
        job = claim_change(conn, tenant_id=tenant_id, change_id=change_id)
        assert job is not None and job.attempts == 1
        # A re-offered copy of the same change finds it held and does nothing.
        assert claim_change(conn, tenant_id=tenant_id, change_id=change_id) is None
        release_change(conn, job)
        again = claim_change(conn, tenant_id=tenant_id, change_id=change_id)
        assert again is not None and again.attempts == 2
        assert settle_change(conn, again) != []
        assert settle_change(conn, again) == []  # settling twice changes nothing
        body = conn.execute(text("SELECT body FROM messages WHERE id = :id"), {"id": message_id})
        assert body.scalar_one() == "new"


def test_the_sweeper_sees_changes_left_pending_and_unclaimed(
    clean_db: Engine, sent: tuple[int, int]
) -> None:
    tenant_id, message_id = sent
    change_id = request(clean_db, tenant_id, message_id)
    with system_tx(clean_db) as conn:
        assert stale_changes(conn, older_than_s=60, limit=10) == []
        conn.execute(text("UPDATE message_changes SET created_at = now() - interval '2 minutes'"))
        assert stale_changes(conn, older_than_s=60, limit=10) == [(tenant_id, change_id)]
        conn.execute(text("UPDATE message_changes SET claimed_at = now()"))
        assert stale_changes(conn, older_than_s=60, limit=10) == []  # a worker holds it
        conn.execute(text("UPDATE message_changes SET claimed_at = now() - interval '1 hour'"))
        assert stale_changes(conn, older_than_s=60, limit=10) == [(tenant_id, change_id)]
