"""SLA breaches with a controllable clock: business-hours timing, recorded once, escalation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event

from engine.db import tenant_tx
from engine.routing.sla import SlaCheck, check_sla
from engine.store.sla import insert_policy
from tests.routing.world import Desk, new_desk

WEEKDAYS_9_TO_6 = {
    "time_zone": "America/Sao_Paulo",
    "week": {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
}
# Friday 2026-03-06 17:30 in São Paulo (UTC-3): half an hour before closing.
FRIDAY_1730 = datetime(2026, 3, 6, 20, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def policy(desk: Desk, **fields: Any) -> int:
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        return insert_policy(
            conn, tenant_id=desk.tenant_id, fields={"name": f"p{len(fields)}", **fields}
        )


def check(desk: Desk, now: datetime) -> SlaCheck:
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        return check_sla(conn, tenant_id=desk.tenant_id, now=now)


def breaches(desk: Desk) -> list[tuple[int, str, datetime]]:
    found = desk.rows("SELECT ticket_id, kind, due_at FROM sla_events ORDER BY id")
    return [(r["ticket_id"], r["kind"], r["due_at"]) for r in found]


def test_first_response_clock_runs_only_in_business_hours_and_breaches_once(desk: Desk) -> None:
    desk.set_setting("business_hours", WEEKDAYS_9_TO_6)
    desk.queue("sales")
    policy(desk, queue_id=desk.queues["sales"], first_response_s=3600)
    ticket_id = desk.ticket(queue="sales", created_at=FRIDAY_1730)
    monday_0930 = at("2026-03-09T12:30:00")

    assert check(desk, at("2026-03-06T21:30:00")).breaches == ()  # Friday 18:30: 30 min used
    assert check(desk, at("2026-03-09T12:29:59")).breaches == ()  # Monday 09:29:59

    found = check(desk, monday_0930)

    assert [(b.ticket_id, b.kind, b.due_at) for b in found.breaches] == [
        (ticket_id, "first_response", monday_0930)
    ]
    assert check(desk, at("2026-03-09T15:00:00")).breaches == ()  # recorded once
    assert breaches(desk) == [(ticket_id, "first_response", monday_0930)]
    outbox = desk.rows("SELECT topic, payload FROM outbox ORDER BY id")
    assert [(o["topic"], o["payload"]["ticket_id"], o["payload"]["kind"]) for o in outbox] == [
        ("sla.breached", ticket_id, "first_response")
    ]


def test_wall_clock_policies_and_queue_hours_of_their_own(desk: Desk) -> None:
    desk.queue(
        "night", hours={"time_zone": "UTC", "week": {"fri": [{"start": "00:00", "end": "24:00"}]}}
    )
    desk.queue("plain")
    policy(desk, queue_id=desk.queues["plain"], resolution_s=1800, business_hours_only=False)
    policy(desk, queue_id=desk.queues["night"], resolution_s=7200)
    plain = desk.ticket(queue="plain", created_at=FRIDAY_1730)
    night = desk.ticket(queue="night", created_at=FRIDAY_1730)

    check(desk, at("2026-03-07T12:00:00"))

    # The night queue is open all Friday (UTC), so 3.5 h remained and it breached at 22:30.
    assert breaches(desk) == [
        (plain, "resolution", at("2026-03-06T21:00:00")),
        (night, "resolution", at("2026-03-06T22:30:00")),
    ]


def test_answered_tickets_stop_the_clock_and_a_new_customer_message_starts_the_next(
    desk: Desk,
) -> None:
    policy(desk, first_response_s=600, next_response_s=600, business_hours_only=False)
    ticket_id = desk.ticket(created_at=FRIDAY_1730)
    desk.execute(
        "UPDATE tickets SET first_response_at = :r, answered = true WHERE id = :id",
        r=at("2026-03-06T20:35:00"),
        id=ticket_id,
    )
    assert check(desk, at("2026-03-06T23:00:00")).breaches == ()

    desk.execute(
        "UPDATE tickets SET answered = false, last_inbound_at = :m WHERE id = :id",
        m=at("2026-03-06T23:00:00"),
        id=ticket_id,
    )
    assert check(desk, at("2026-03-06T23:09:59")).breaches == ()
    assert [b.kind for b in check(desk, at("2026-03-06T23:10:00")).breaches] == ["next_response"]
    assert check(desk, at("2026-03-06T23:30:00")).breaches == ()


def test_a_tag_policy_applies_to_tagged_contacts_only(desk: Desk) -> None:
    vip = desk.tag("vip")
    policy(desk, tag_id=vip, first_response_s=60, business_hours_only=False)
    tagged = desk.ticket(created_at=FRIDAY_1730, tag=vip)
    desk.ticket(created_at=FRIDAY_1730)

    check(desk, at("2026-03-06T21:00:00"))

    assert breaches(desk) == [(tagged, "first_response", at("2026-03-06T20:31:00"))]


def test_a_breach_escalates_to_a_user_or_to_another_queue(desk: Desk) -> None:
    desk.queue("sales")
    desk.queue("escalations", distribution="round_robin")
    desk.agent("ana", queues=("sales",))
    boss = desk.agent("boss", role="supervisor")
    senior = desk.agent("senior", queues=("escalations",))
    policy(
        desk,
        queue_id=desk.queues["sales"],
        first_response_s=60,
        business_hours_only=False,
        escalate_to_user_id=boss,
    )
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        insert_policy(
            conn,
            tenant_id=desk.tenant_id,
            fields={
                "name": "resolve in a day",
                "queue_id": desk.queues["sales"],
                "resolution_s": 86400,
                "business_hours_only": False,
                "escalate_to_queue_id": desk.queues["escalations"],
            },
        )
    ticket_id = desk.ticket(queue="sales", status="open", user="ana", created_at=FRIDAY_1730)

    check(desk, at("2026-03-06T21:00:00"))
    assert desk.assignee(ticket_id) == boss

    check(desk, at("2026-03-07T21:00:00"))
    moved = desk.rows("SELECT queue_id, user_id, status FROM tickets WHERE id = :id", id=ticket_id)
    assert moved == [
        {"queue_id": desk.queues["escalations"], "user_id": senior, "status": "pending"}
    ]
    events = desk.rows(
        "SELECT type FROM ticket_events WHERE ticket_id = :id ORDER BY id", id=ticket_id
    )
    assert [e["type"] for e in events] == ["sla_escalated", "sla_escalated", "assigned"]


def test_closed_tickets_and_tickets_of_other_tenants_are_not_checked(
    desk: Desk, db: Engine
) -> None:
    other = new_desk(db)
    policy(other, first_response_s=60, business_hours_only=False)
    other.ticket(created_at=FRIDAY_1730)
    policy(desk, first_response_s=60, business_hours_only=False)
    desk.ticket(status="closed", created_at=FRIDAY_1730)

    assert check(desk, at("2026-03-07T00:00:00")).breaches == ()
    assert len(check(other, at("2026-03-07T00:00:00")).breaches) == 1


def test_a_sweep_over_clocks_already_breached_reads_and_writes_nothing_per_ticket(
    desk: Desk, db: Engine
) -> None:
    desk.set_setting("business_hours", WEEKDAYS_9_TO_6)
    desk.queue("sales")
    policy(desk, queue_id=desk.queues["sales"], first_response_s=3600, resolution_s=7200)
    tickets = [desk.ticket(queue="sales", created_at=FRIDAY_1730) for _ in range(20)]
    tuesday = at("2026-03-10T15:00:00")
    assert len(check(desk, tuesday).breaches) == 2 * len(tickets)

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        again = check(desk, at("2026-03-10T15:00:15"))  # the next sweep, 15 s later
    finally:
        event.remove(db, "before_cursor_execute", count)

    assert again.breaches == ()
    # The tenant scope and the one clocks query: no per-ticket hours read or breach insert.
    assert not [s for s in statements if "INSERT" in s]
    assert len(statements) <= 3, statements
