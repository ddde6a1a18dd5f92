"""Lifecycle jobs: inactive tickets auto-closed with a farewell, waiting tickets swept to agents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine

from actors.routing_jobs import check_slas, close_inactive, distribute_all
from tests.api.tickets_helpers import queued
from tests.routing.world import Desk, new_desk


def deps(db: Engine) -> Any:
    return SimpleNamespace(db=db)


def status(desk: Desk, ticket_id: int) -> str:
    found: str = desk.value("SELECT status FROM tickets WHERE id = :id", id=ticket_id)
    return found


def test_inactive_tickets_close_with_the_channels_farewell(
    desk: Desk, db: Engine, broker: StubBroker
) -> None:
    desk.set_setting("auto_close_after_h", 24)
    desk.set_setting("farewell_messages", {str(desk.channel_id): "Closed for inactivity, bye!"})
    desk.queue("sales", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales",), max_open=1)
    idle = desk.ticket(queue="sales", status="open", user="ana", age_s=25 * 3600)
    recent = desk.ticket(queue="sales", status="open", age_s=23 * 3600)
    waiting = desk.ticket(queue="sales", age_s=60)
    untouched = new_desk(db)  # no auto_close_after_h: nothing of theirs closes
    theirs = untouched.ticket(status="open", age_s=90 * 24 * 3600)

    close_inactive(deps(db))

    assert (status(desk, idle), status(desk, recent), status(untouched, theirs)) == (
        "closed",
        "open",
        "open",
    )
    events = desk.rows(
        "SELECT type, user_id, data->>'status' AS status FROM ticket_events"
        " WHERE ticket_id = :id AND type = 'auto_closed'",
        id=idle,
    )
    assert events == [{"type": "auto_closed", "user_id": None, "status": "closed"}]
    farewell = desk.rows(
        "SELECT id, body, direction, status FROM messages WHERE ticket_id = :id", id=idle
    )
    assert [(m["body"], m["direction"], m["status"]) for m in farewell] == [
        ("Closed for inactivity, bye!", "out", "pending")
    ]
    assert queued(broker, "outbound") == [("send_message", (farewell[0]["id"],))]
    # Nobody answered the customer: the automatic farewell must not say otherwise in the
    # ticket's first-response time or its answered flag (statistics read both).
    answered = desk.rows(
        "SELECT t.answered, t.first_response_at, m.send_type FROM tickets t"
        " JOIN messages m ON m.ticket_id = t.id WHERE t.id = :id",
        id=idle,
    )
    assert answered == [{"answered": False, "first_response_at": None, "send_type": "bot"}]
    # The agent's freed seat went to the ticket waiting in their queue.
    assert desk.assignee(waiting) == ana
    close_inactive(deps(db))
    assert desk.value("SELECT count(*) FROM messages") == 1  # closed once, one farewell


def test_auto_close_follows_a_time_passed_in(desk: Desk, db: Engine, broker: StubBroker) -> None:
    desk.set_setting("auto_close_after_h", 2)
    ticket_id = desk.ticket(status="pending", age_s=60)

    close_inactive(deps(db), now=datetime.now(UTC) + timedelta(hours=1))
    assert status(desk, ticket_id) == "pending"
    assert close_inactive(deps(db), now=datetime.now(UTC) + timedelta(hours=3)) >= 1
    assert status(desk, ticket_id) == "closed"
    assert desk.value("SELECT count(*) FROM messages") == 0  # no farewell configured


def test_the_sweep_assigns_waiting_tickets_and_publishes(
    desk: Desk, db: Engine, broker: StubBroker
) -> None:
    desk.queue("sales", distribution="round_robin")
    ticket_id = desk.ticket(queue="sales")
    ana = desk.agent("ana", queues=("sales",))

    assert distribute_all(deps(db)) >= 1

    assert desk.assignee(ticket_id) == ana
    announced = desk.value("SELECT id FROM outbox WHERE payload->>'action' = 'assigned'")
    published = [i for _, (ids,) in queued(broker, "deliver") for i in ids]
    assert announced in published


def test_the_sla_job_records_breaches_of_each_tenant(
    desk: Desk, db: Engine, broker: StubBroker
) -> None:
    desk.execute(
        "INSERT INTO sla_policies (tenant_id, name, first_response_s, business_hours_only)"
        " VALUES (:t, 'fast', 60, false)"
    )
    ticket_id = desk.ticket(age_s=120)

    assert check_slas(deps(db)) >= 1

    assert desk.rows("SELECT ticket_id, kind FROM sla_events") == [
        {"ticket_id": ticket_id, "kind": "first_response"}
    ]
