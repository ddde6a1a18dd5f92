"""Which tickets an agent may see (the rule the realtime feed applies), on the seeded tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import Principal
from api.rbac import sees_all_tickets
from engine.queries.visibility import SEES_ALL, ticket_of_message, ticket_visible_to
from tests.api.helpers import Seed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def conn(db: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A system-scoped transaction rolled back afterwards: the shared seed stays as it was."""
    async with db.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text("SELECT set_config('app.scope', 'system', true)"))
        yield connection
        await transaction.rollback()


def _ticket(seed: Seed, status: str) -> int:
    return next(t.id for t in seed.a.tickets if t.status == status)


async def test_supervisors_and_up_see_every_ticket_of_their_tenant_only(
    conn: AsyncConnection, seed: Seed
) -> None:
    for role in ("supervisor", "admin", "super"):
        boss = Principal(user_id=seed.a.admin_id, tenant_id=seed.a.tenant_id, role=role)
        assert await ticket_visible_to(conn, boss, _ticket(seed, "closed"))
        assert not await ticket_visible_to(conn, boss, seed.b.tickets[0].id)
        assert not await ticket_visible_to(conn, boss, 9_000_000)


async def test_the_rule_matches_the_rbac_table() -> None:
    for role in ("agent", "supervisor", "admin", "super"):
        assert (role in SEES_ALL) == sees_all_tickets(role)


async def test_an_agent_sees_their_queues_their_tickets_their_wallet_and_unclaimed_pending(
    conn: AsyncConnection, seed: Seed
) -> None:
    agent = Principal(user_id=seed.agent_id, tenant_id=seed.a.tenant_id, role="agent")
    tenant = seed.a.tenant_id
    pending, opened, closed = (_ticket(seed, s) for s in ("pending", "open", "closed"))
    queue_id = await conn.scalar(
        text("INSERT INTO queues (tenant_id, name) VALUES (:t, 'Visibility') RETURNING id"),
        {"t": tenant},
    )

    assert await ticket_visible_to(conn, agent, pending)  # pending, no queue: anyone may take it
    assert not await ticket_visible_to(conn, agent, opened)
    assert not await ticket_visible_to(conn, agent, closed)

    await conn.execute(
        text("UPDATE tickets SET queue_id = :q WHERE id IN (:p, :o)"),
        {"q": queue_id, "p": pending, "o": opened},
    )
    assert not await ticket_visible_to(conn, agent, pending)  # claimed by a queue not theirs
    await conn.execute(
        text("INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES (:t, :u, :q)"),
        {"t": tenant, "u": seed.agent_id, "q": queue_id},
    )
    assert await ticket_visible_to(conn, agent, opened)

    await conn.execute(
        text("UPDATE tickets SET user_id = :u WHERE id = :c"), {"u": seed.agent_id, "c": closed}
    )
    assert await ticket_visible_to(conn, agent, closed)  # assigned to them

    other = next(t for t in seed.a.tickets if t.status == "closed" and t.id != closed)
    assert not await ticket_visible_to(conn, agent, other.id)
    await conn.execute(
        text("INSERT INTO wallets (tenant_id, contact_id, user_id) VALUES (:t, :c, :u)"),
        {"t": tenant, "c": other.contact_id, "u": seed.agent_id},
    )
    assert await ticket_visible_to(conn, agent, other.id)  # their wallet's contact

    assert not await ticket_visible_to(conn, agent, seed.b.tickets[0].id)


async def test_a_message_leads_to_its_ticket_within_the_tenant(
    conn: AsyncConnection, seed: Seed
) -> None:
    message_id = seed.a.message_ids[0]
    assert await ticket_of_message(conn, seed.a.tenant_id, message_id) == seed.a.message_ticket_id
    assert await ticket_of_message(conn, seed.b.tenant_id, message_id) is None
