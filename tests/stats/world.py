"""A small dataset whose statistics are worked out by hand in the tests' expectations.

Tenant A lives in America/Sao_Paulo (UTC-3, no DST since 2019); the period asked for is
2024-05-01..2024-05-02 local, i.e. 2024-05-01T03:00Z up to 2024-05-03T03:00Z. Tenant B
(UTC) has traffic in the same hours that must never show up in A's figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from engine.security import hash_password


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC instant in May 2024."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    tenant_a: int
    tenant_b: int
    whatsapp: int  # A's channels
    telegram: int
    sales: int  # A's queue
    ana: int  # A's agents
    bruno: int
    users: dict[str, int]  # A's user id per role
    b_agent: int
    campaign: int  # A's campaign in the period
    b_campaign: int


class _Rows:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.protocol = 0

    def add(self, table: str, **values: object) -> int:
        names = ", ".join(values)
        binds = ", ".join(f":{n}" for n in values)
        sql = f"INSERT INTO {table} ({names}) VALUES ({binds}) RETURNING id"
        return int(self.conn.execute(text(sql), values).scalar_one())

    def user(self, tenant_id: int, name: str, role: str) -> int:
        return self.add(
            "users",
            tenant_id=tenant_id,
            name=name,
            email=f"{name.lower()}.{tenant_id}@stats.test",
            password_hash=hash_password("not-used-here"),
            role=role,
        )

    def ticket(
        self,
        tenant_id: int,
        channel_id: int,
        *,
        created: datetime,
        status: str,
        queue_id: int | None = None,
        user_id: int | None = None,
        first_response: datetime | None = None,
        closed: datetime | None = None,
        inbound: bool = True,
    ) -> int:
        self.protocol += 1
        contact = self.add("contacts", tenant_id=tenant_id, name=f"Contact {self.protocol}")
        return self.add(
            "tickets",
            tenant_id=tenant_id,
            channel_id=channel_id,
            contact_id=contact,
            status=status,
            protocol=f"STATS{tenant_id:04d}{self.protocol:06d}",
            queue_id=queue_id,
            user_id=user_id,
            first_response_at=first_response,
            closed_at=closed,
            created_at=created,
            last_inbound_at=created if inbound else None,
        )

    def message(
        self, ticket_id: int, direction: str, when: datetime, user_id: int | None = None
    ) -> int:
        row = self.conn.execute(
            text("SELECT tenant_id, channel_id, contact_id FROM tickets WHERE id = :id"),
            {"id": ticket_id},
        ).one()
        return self.add(
            "messages",
            tenant_id=row[0],
            ticket_id=ticket_id,
            contact_id=row[2],
            channel_id=row[1],
            direction=direction,
            type="text",
            status="received" if direction == "in" else "sent",
            user_id=user_id,
            send_type=None if direction == "in" else ("chat" if user_id else "campaign"),
            created_at=when,
        )

    def event(self, ticket_id: int, tenant_id: int, type_: str) -> None:
        self.add("ticket_events", tenant_id=tenant_id, ticket_id=ticket_id, type=type_)

    def campaign(self, tenant_id: int, channel_id: int, name: str, created: datetime) -> int:
        return self.add(
            "campaigns",
            tenant_id=tenant_id,
            channel_id=channel_id,
            name=name,
            status="finished",
            created_at=created,
        )

    def recipients(self, tenant_id: int, campaign_id: int, statuses: list[str]) -> None:
        for status in statuses:
            contact = self.add("contacts", tenant_id=tenant_id, name=f"Recipient {status}")
            self.add(
                "campaign_contacts",
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                contact_id=contact,
                status=status,
            )


BUSINESS_HOURS = {
    "time_zone": "America/Sao_Paulo",
    "week": {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def seed_world(conn: Connection) -> World:
    """Insert both tenants (system scope). Ticket comments give local times in Sao Paulo."""
    r = _Rows(conn)
    a = r.add("tenants", name="Stats A", time_zone="America/Sao_Paulo")
    b = r.add("tenants", name="Stats B", time_zone="UTC")
    users = {role: r.user(a, f"{role.title()}A", role) for role in ("admin", "supervisor")}
    ana, bruno = r.user(a, "Ana", "agent"), r.user(a, "Bruno", "agent")
    users["agent"] = ana
    wa = r.add("channels", tenant_id=a, type="whatsapp", name="WhatsApp Sales", external_id="s1")
    tg = r.add("channels", tenant_id=a, type="telegram", name="Telegram", external_id="s2")
    sales = r.add("queues", tenant_id=a, name="Sales")
    # T1: Wed 09:00, answered 09:10 by Ana, closed 10:00. First contact.
    t1 = r.ticket(
        a, wa, created=at(1, 12), status="closed", queue_id=sales, user_id=ana,
        first_response=at(1, 12, 10), closed=at(1, 13),
    )  # fmt: skip
    r.message(t1, "in", at(1, 12))
    r.message(t1, "out", at(1, 12, 10), ana)
    # T2: Wed 11:00, answered 11:30, transferred to Bruno, closed Thu 11:00. Two agents wrote.
    t2 = r.ticket(
        a, wa, created=at(1, 14), status="closed", queue_id=sales, user_id=bruno,
        first_response=at(1, 14, 30), closed=at(2, 14),
    )  # fmt: skip
    r.message(t2, "in", at(1, 14))
    r.message(t2, "out", at(1, 14, 30), ana)
    r.message(t2, "out", at(1, 15), bruno)
    r.event(t2, a, "transferred")
    # T3: Wed 23:00 local (Thu 02:00 UTC), answered 23:20, still open, in no queue.
    t3 = r.ticket(a, tg, created=at(2, 2), status="open", user_id=ana, first_response=at(2, 2, 20))
    r.message(t3, "in", at(2, 2))
    r.message(t3, "out", at(2, 2, 20), ana)
    r.message(t3, "in", at(2, 2, 30))
    # T4: Thu 17:00, waiting in Sales; its last message is at 23:59 Thu, one more at 00:00 Fri.
    t4 = r.ticket(a, tg, created=at(2, 20), status="pending", queue_id=sales)
    r.message(t4, "in", at(2, 20))
    r.message(t4, "in", at(3, 2, 59))
    r.message(t4, "in", at(3, 3))  # Friday local: outside the period
    # T5: Thu 07:00, answered 07:05, closed 08:00 -- then reopened and closed again.
    t5 = r.ticket(
        a, wa, created=at(2, 10), status="closed", queue_id=sales, user_id=ana,
        first_response=at(2, 10, 5), closed=at(2, 11),
    )  # fmt: skip
    r.message(t5, "in", at(2, 10))
    r.message(t5, "out", at(2, 10, 5), ana)
    r.event(t5, a, "reopened")
    # T6: before the period.
    t6 = r.ticket(
        a, wa, created=at(1, 2), status="closed", user_id=ana, first_response=at(1, 2, 1),
        closed=at(1, 2, 30),
    )  # fmt: skip
    r.message(t6, "in", at(1, 2))
    r.message(t6, "out", at(1, 2, 1), ana)
    # T7: a campaign send's ticket: created closed, the contact never wrote.
    t7 = r.ticket(a, wa, created=at(1, 18), status="closed", closed=at(1, 18), inbound=False)
    r.message(t7, "out", at(1, 18))
    conn.execute(
        text("INSERT INTO settings (tenant_id, key, value) VALUES (:t, 'business_hours', :v)"),
        {"t": a, "v": json.dumps(BUSINESS_HOURS)},
    )
    campaign = r.campaign(a, wa, "May promo", at(1, 15))
    r.recipients(a, campaign, ["read", "delivered", "failed", "skipped", "sent"])
    old = r.campaign(a, wa, "April promo", datetime(2024, 4, 20, tzinfo=UTC))
    r.recipients(a, old, ["read"])

    b_wa = r.add("channels", tenant_id=b, type="whatsapp", name="B WhatsApp", external_id="s3")
    b_agent = r.user(b, "Zed", "agent")
    for hour in (12, 13, 14):
        tb = r.ticket(
            b, b_wa, created=at(1, hour), status="open", user_id=b_agent,
            first_response=at(1, hour, 1),
        )  # fmt: skip
        r.message(tb, "in", at(1, hour))
        r.message(tb, "out", at(1, hour, 1), b_agent)
    b_campaign = r.campaign(b, b_wa, "B promo", at(1, 15))
    r.recipients(b, b_campaign, ["failed", "failed"])
    return World(
        tenant_a=a, tenant_b=b, whatsapp=wa, telegram=tg, sales=sales, ana=ana, bruno=bruno,
        users=users, b_agent=b_agent, campaign=campaign, b_campaign=b_campaign,
    )  # fmt: skip
