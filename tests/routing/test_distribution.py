"""Ticket distribution on real PostgreSQL: policies, fairness, capacity under concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from engine.db import tenant_tx
from engine.routing.distribution import distribute, distribute_waiting
from engine.store.ticket_actions import (
    mark_ticket_accepted,
    mark_ticket_closed,
    mark_ticket_transferred,
)
from engine.store.ticket_log import lock_ticket
from tests.routing.world import Desk


def assign(desk: Desk, ticket_id: int) -> int | None:
    """The agent the ticket was just given, else the one it already had (None if none)."""
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        assignment = distribute(conn, tenant_id=desk.tenant_id, ticket_id=ticket_id)
        if assignment is not None:
            return assignment.user_id
        current = lock_ticket(conn, tenant_id=desk.tenant_id, ticket_id=ticket_id)
        return current.user_id if current.status != "closed" else None


def waiting(desk: Desk, queue: str | None = None) -> int:
    """How many waiting tickets were assigned."""
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        queue_id = None if queue is None else desk.queues[queue]
        return len(distribute_waiting(conn, tenant_id=desk.tenant_id, queue_id=queue_id))


def transfer(desk: Desk, ticket_id: int, *, by: int, queue: int | None, to: int | None) -> None:
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        mark_ticket_transferred(
            conn,
            tenant_id=desk.tenant_id,
            ticket_id=ticket_id,
            user_id=by,
            to_queue_id=queue,
            to_user_id=to,
        )


def names(desk: Desk, user_ids: list[int | None]) -> list[str | None]:
    by_id = {v: k for k, v in desk.users.items()}
    return [None if u is None else by_id[u] for u in user_ids]


def test_round_robin_cycles_through_the_online_members(desk: Desk) -> None:
    desk.queue("sales", distribution="round_robin")
    for name in ("ana", "bia", "caio"):
        desk.agent(name, queues=("sales",))
    desk.agent("off", queues=("sales",), online=False)
    desk.agent("elsewhere")

    got = [assign(desk, desk.ticket(queue="sales")) for _ in range(7)]

    assert names(desk, got) == ["ana", "bia", "caio", "ana", "bia", "caio", "ana"]


def test_least_loaded_gives_to_the_agent_with_fewest_live_tickets(desk: Desk) -> None:
    desk.queue("support", distribution="least_loaded")
    desk.agent("busy", queues=("support",))
    desk.agent("idle", queues=("support",))
    for _ in range(2):
        desk.ticket(queue="support", status="open", user="busy")

    got = [assign(desk, desk.ticket(queue="support")) for _ in range(4)]

    # idle catches up to two, then ties alternate, the one assigned longest ago first.
    assert names(desk, got) == ["idle", "idle", "busy", "idle"]


def test_assignment_is_audited_and_announced(desk: Desk) -> None:
    desk.queue("sales", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales",))
    ticket_id = desk.ticket(queue="sales")

    assert assign(desk, ticket_id) == ana

    event = desk.rows(
        "SELECT type, user_id, data FROM ticket_events WHERE ticket_id = :id", id=ticket_id
    )
    assert event == [
        {
            "type": "assigned",
            "user_id": None,
            "data": {
                "status": "pending",
                "queue_id": desk.queues["sales"],
                "user_id": ana,
                "policy": "round_robin",
            },
        }
    ]
    outbox = desk.rows("SELECT topic, payload FROM outbox WHERE tenant_id = :t")
    assert [(o["topic"], o["payload"]["action"], o["payload"]["user_id"]) for o in outbox] == [
        ("ticket.updated", "assigned", ana)
    ]
    # The agent still accepts it, which opens it.
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        mark_ticket_accepted(conn, tenant_id=desk.tenant_id, ticket_id=ticket_id, user_id=ana)
    assert desk.value("SELECT status FROM tickets WHERE id = :id", id=ticket_id) == "open"


@pytest.mark.parametrize("policy", ["none", "round_robin"])
def test_nobody_gets_a_ticket_without_a_policy_or_an_online_member(desk: Desk, policy: str) -> None:
    desk.queue("sales", distribution=policy)
    desk.agent("off", queues=("sales",), online=False)
    if policy == "none":
        desk.agent("on", queues=("sales",))
    ticket_id = desk.ticket(queue="sales")

    assert assign(desk, ticket_id) is None
    assert desk.value("SELECT status FROM tickets WHERE id = :id", id=ticket_id) == "pending"
    assert desk.assignee(ticket_id) is None


def test_tickets_beyond_capacity_wait_and_are_assigned_when_capacity_frees(desk: Desk) -> None:
    desk.queue("sales", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales",), max_open=1)
    first, second, third = (desk.ticket(queue="sales", age_s=age) for age in (30, 20, 10))

    assert assign(desk, first) == ana
    assert assign(desk, third) is None
    assert assign(desk, second) is None

    with tenant_tx(desk.db, desk.tenant_id) as conn:
        mark_ticket_closed(conn, tenant_id=desk.tenant_id, ticket_id=first, user_id=ana)

    # The oldest waiting ticket goes first.
    assert (desk.assignee(second), desk.assignee(third)) == (ana, None)

    transfer(desk, second, by=ana, queue=None, to=desk.agent("bia"))
    assert desk.assignee(third) == ana


def test_the_sweep_assigns_waiting_tickets_once_an_agent_can_take_them(desk: Desk) -> None:
    desk.queue("sales", distribution="least_loaded")
    desk.queue("quiet", distribution="none")
    tickets = [desk.ticket(queue="sales", age_s=100 - n) for n in range(3)]
    unqueued = desk.ticket(queue="quiet")
    bot = desk.ticket(queue="sales", bot=True)
    assert waiting(desk) == 0

    ana = desk.agent("ana", queues=("sales", "quiet"), max_open=2)

    assert waiting(desk) == 2
    assert [desk.assignee(t) for t in tickets] == [ana, ana, None]
    assert (desk.assignee(unqueued), desk.assignee(bot)) == (None, None)


def test_transfer_to_a_queue_distributes_the_ticket_there(desk: Desk) -> None:
    desk.queue("sales", distribution="round_robin")
    desk.queue("billing", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales",))
    bia = desk.agent("bia", queues=("billing",))
    ticket_id = desk.ticket(queue="sales", status="open", user="ana")

    transfer(desk, ticket_id, by=ana, queue=desk.queues["billing"], to=None)

    assert desk.assignee(ticket_id) == bia
    kinds = desk.rows(
        "SELECT type FROM ticket_events WHERE ticket_id = :id ORDER BY id", id=ticket_id
    )
    assert [k["type"] for k in kinds] == ["transferred", "assigned"]


def test_concurrent_assignments_never_exceed_capacity(desk: Desk) -> None:
    desk.queue("sales", distribution="least_loaded")
    desk.queue("vip", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales", "vip"), max_open=3)
    bia = desk.agent("bia", queues=("sales", "vip"), max_open=3)
    tickets = [desk.ticket(queue="sales" if n % 2 else "vip") for n in range(20)]
    results: list[int | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)
    lock = threading.Lock()

    def worker(mine: list[int]) -> None:
        try:
            start.wait()
            for ticket_id in mine:
                got = assign(desk, ticket_id)
                with lock:
                    results.append(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tickets[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Counter(results) == {ana: 3, bia: 3, None: 14}
    load = desk.rows(
        "SELECT user_id, count(*) AS n FROM tickets WHERE user_id IS NOT NULL GROUP BY user_id"
    )
    assert {r["user_id"]: r["n"] for r in load} == {ana: 3, bia: 3}
