"""What automation reads and changes on a ticket: context, bot state, hand-offs, closing.

Every change is audited (ticket_events) and announced (`ticket.updated` in the outbox) through
engine.store.ticket_log, exactly like an agent's action, with no user: the engine acted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import JsonValue
from sqlalchemy import Connection, TextClause, text

from engine.automation.bot import BotState, Ending
from engine.automation.flows import HandOff
from engine.events import Frozen
from engine.routing.distribution import distribute
from engine.store.settings import get_setting
from engine.store.ticket_actions import queue_exists, user_exists
from engine.store.ticket_log import (
    LockedTicket,
    lock_ticket,
    record_ticket_change,
    update_ticket,
)


class TicketContext(Frozen):
    """A live ticket as automation sees it, locked for the rest of the transaction."""

    id: int
    tenant_id: int
    status: str
    channel_id: int
    queue_id: int | None
    user_id: int | None
    is_group: bool
    protocol: str
    chat_flow_id: int | None
    chat_flow_state: JsonValue | None
    bot_retries: int
    contact_id: int
    contact_name: str | None
    contact_phone: str | None
    channel_flow_id: int | None
    channel_queue_id: int | None
    queue_name: str | None
    agent_name: str | None
    time_zone: str

    def bot_state(self) -> BotState | None:
        state = self.chat_flow_state
        if not isinstance(state, dict) or not isinstance(state.get("node"), str):
            return None
        return BotState(node=str(state["node"]), retries=self.bot_retries)


_CONTEXT = text(
    """
    SELECT t.id, t.tenant_id, t.status, t.channel_id, t.queue_id, t.user_id, t.is_group, t.protocol,
           t.chat_flow_id, t.chat_flow_state, t.bot_retries, t.contact_id,
           c.name AS contact_name, c.phone AS contact_phone,
           ch.chat_flow_id AS channel_flow_id, ch.default_queue_id AS channel_queue_id,
           q.name AS queue_name, u.name AS agent_name, tn.time_zone
    FROM tickets t
    JOIN contacts c ON c.id = t.contact_id
    JOIN channels ch ON ch.id = t.channel_id
    JOIN tenants tn ON tn.id = t.tenant_id
    LEFT JOIN queues q ON q.id = t.queue_id
    LEFT JOIN users u ON u.id = t.user_id
    WHERE t.tenant_id = :t AND t.id = ANY(:ids)
    ORDER BY t.id
    FOR UPDATE OF t
    """
)


def get_ticket_context(conn: Connection, *, tenant_id: int, ticket_id: int) -> TicketContext | None:
    return get_ticket_contexts(conn, tenant_id=tenant_id, ticket_ids=[ticket_id]).get(ticket_id)


def get_ticket_contexts(
    conn: Connection, *, tenant_id: int, ticket_ids: Sequence[int]
) -> dict[int, TicketContext]:
    """Several tickets' contexts in one round trip, their rows locked in id order."""
    rows = conn.execute(_CONTEXT, {"t": tenant_id, "ids": sorted(set(ticket_ids))}).mappings()
    return {int(r["id"]): TicketContext.model_validate(dict(r)) for r in rows}


_SAVE_STATE = text(
    """
    UPDATE tickets SET chat_flow_id = :flow, chat_flow_state = CAST(:state AS jsonb),
        bot_retries = :retries, bot_timeout_at = :timeout_at, updated_at = now()
    WHERE tenant_id = :t AND id = :id
    """
)


def save_bot_state(
    conn: Connection,
    *,
    tenant_id: int,
    ticket_id: int,
    flow_id: int,
    state: BotState,
    timeout_s: int | None,
    now: datetime,
) -> None:
    """Keep where the bot waits; with `timeout_s`, when the scheduler should give up waiting."""
    conn.execute(
        _SAVE_STATE,
        {
            "t": tenant_id,
            "id": ticket_id,
            "flow": flow_id,
            "state": json.dumps({"node": state.node, "at": now.isoformat()}),
            "retries": state.retries,
            "timeout_at": None if timeout_s is None else now + timedelta(seconds=timeout_s),
        },
    )


_END_BOT = text(
    """
    UPDATE tickets SET chat_flow_state = NULL, bot_retries = 0, bot_timeout_at = NULL,
        status = CASE WHEN :close THEN 'closed'
                      WHEN CAST(:user_id AS bigint) IS NOT NULL THEN 'open' ELSE status END,
        closed_at = CASE WHEN :close THEN now() ELSE closed_at END,
        queue_id = coalesce(CAST(:queue_id AS bigint), queue_id),
        user_id = coalesce(CAST(:user_id AS bigint), user_id),
        updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)


def finish_bot(
    conn: Connection,
    *,
    tenant_id: int,
    ticket_id: int,
    ending: Ending,
    default_queue_id: int | None,
) -> list[int]:
    """End the bot on the ticket as `ending` says; the outbox ids of what changed.

    A target that no longer exists (deleted queue or user) sends the ticket to the tenant's
    `default_queue_id` setting, else to the channel's default queue, and the event says why.
    A queue hand-off is then offered to the queue's agents by its distribution policy.
    """
    lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    queue_id, user_id, why = (None, None, None)
    if not ending.close:
        queue_id, user_id, why = _resolve(
            conn, tenant_id, ending.target or HandOff(), default_queue_id
        )
    updated = update_ticket(
        conn,
        _END_BOT,
        t=tenant_id,
        id=ticket_id,
        close=ending.close,
        queue_id=queue_id,
        user_id=user_id,
    )
    data: dict[str, object] = {"reason": ending.reason}
    if why is not None:
        data["fallback"] = why
    action = "bot_closed" if ending.close else "bot_handoff"
    result = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action=action, user_id=None, data=data
    )
    outbox = list(result.outbox_ids)
    if not ending.close and user_id is None and updated.queue_id is not None:
        outbox += _offer(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    return outbox


def _resolve(
    conn: Connection, tenant_id: int, target: HandOff, fallback_queue_id: int | None
) -> tuple[int | None, int | None, str | None]:
    """(queue id, user id, why the fallback was taken) for a hand-off target."""
    missing: list[str] = []
    user_id = target.user_id
    if user_id is not None and not user_exists(conn, tenant_id=tenant_id, user_id=user_id):
        missing.append(f"user {user_id} no longer exists")
        user_id = None
    queue_id = target.queue_id
    if queue_id is not None and not queue_exists(conn, tenant_id=tenant_id, queue_id=queue_id):
        missing.append(f"queue {queue_id} no longer exists")
        queue_id = None
    if user_id is not None or queue_id is not None:
        return queue_id, user_id, None
    why = "; ".join(missing) or "the flow names no hand-off target"
    default = get_setting(conn, tenant_id=tenant_id, key="default_queue_id")
    for candidate in (default, fallback_queue_id):
        if candidate is not None and queue_exists(conn, tenant_id=tenant_id, queue_id=candidate):
            return int(candidate), None, f"{why}; handed to default queue {candidate}"
    return None, None, f"{why}; no default queue, left pending"


_SET_QUEUE = text(
    """
    UPDATE tickets SET queue_id = :queue_id, updated_at = now()
    WHERE tenant_id = :t AND id = :id AND queue_id IS NULL
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)


def queue_new_ticket(
    conn: Connection, *, tenant_id: int, ticket_id: int, queue_id: int
) -> list[int]:
    """Put a ticket no bot handles into its channel's default queue and offer it to agents."""
    reason: dict[str, object] = {"reason": "channel_default_queue"}
    changed = _change(conn, _SET_QUEUE, tenant_id, ticket_id, "queued", reason, queue_id=queue_id)
    if changed:
        changed += _offer(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    return changed


def _offer(conn: Connection, *, tenant_id: int, ticket_id: int) -> list[int]:
    """Offer a queued ticket to its queue's agents; the assignment's outbox id, if any."""
    assignment = distribute(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    return [] if assignment is None else [assignment.outbox_id]


_CLOSE = text(
    """
    UPDATE tickets SET status = 'closed', closed_at = now(), chat_flow_state = NULL,
        bot_retries = 0, bot_timeout_at = NULL, updated_at = now()
    WHERE tenant_id = :t AND id = :id AND status <> 'closed'
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)


def close_by_customer(
    conn: Connection, *, tenant_id: int, ticket_id: int, keyword: str
) -> list[int]:
    """The customer sent a close keyword: the ticket closes (and any bot with it)."""
    data: dict[str, object] = {"keyword_length": len(keyword)}
    return _change(conn, _CLOSE, tenant_id, ticket_id, "closed_by_customer", data)


def _change(
    conn: Connection,
    statement: TextClause,
    tenant_id: int,
    ticket_id: int,
    action: str,
    data: dict[str, object],
    **params: object,
) -> list[int]:
    """Run a conditional UPDATE … RETURNING; when it changed the ticket, audit and announce."""
    bound = {"t": tenant_id, "id": ticket_id, **params}
    row = conn.execute(statement, bound).mappings().one_or_none()
    if row is None:
        return []
    ticket = LockedTicket.model_validate(dict(row))
    result = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=ticket, action=action, user_id=None, data=data
    )
    return list(result.outbox_ids)
