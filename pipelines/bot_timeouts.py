"""Bot inactivity: hand over tickets whose customer stopped answering the chat-flow bot."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, text

from engine.automation import bot
from engine.automation.catalog import get_flow
from engine.automation.flows import HandOff
from engine.automation.tickets import get_ticket_context
from engine.db import set_system, set_tenant
from pipelines.inbound.automate import apply_turn
from pipelines.inbound.models import BatchOutcome

log = logging.getLogger(__name__)

BATCH_LIMIT = 500

_DUE = text(
    """
    SELECT id, tenant_id FROM tickets
    WHERE bot_timeout_at <= :now AND status <> 'closed' AND chat_flow_state IS NOT NULL
    ORDER BY bot_timeout_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def hand_off_idle_bots(
    conn: Connection, *, now: datetime, limit: int = BATCH_LIMIT
) -> tuple[int, BatchOutcome]:
    """Time out every waiting bot past its deadline: (tickets handed over, what to send).

    Starts and ends in system scope; each ticket is handled in its tenant's scope. Rows another
    transaction holds (a customer answering right now) are skipped and seen next time, so a
    bot never both answers and times out. The caller enqueues `sends` after commit.
    """
    outcome = BatchOutcome()
    due = conn.execute(_DUE, {"now": now, "limit": limit}).all()
    for ticket_id, tenant_id in due:
        set_tenant(conn, int(tenant_id))
        ticket = get_ticket_context(conn, tenant_id=int(tenant_id), ticket_id=int(ticket_id))
        state = None if ticket is None else ticket.bot_state()
        if ticket is None or state is None or ticket.chat_flow_id is None:
            continue
        flow = get_flow(conn, tenant_id=ticket.tenant_id, flow_id=ticket.chat_flow_id)
        if flow is None:  # the flow was deleted while the bot waited
            gave_up = bot.Step("bot_gave_up", {"node": state.node, "reason": "inactivity"})
            turn = bot.Turn(ending=bot.Ending("inactivity", target=HandOff()), steps=[gave_up])
        else:
            turn = bot.timed_out(flow, state)
        apply_turn(conn, ticket, ticket.chat_flow_id, flow, turn, outcome, now)
    set_system(conn)
    if due:
        log.info("idle bots handed over", extra={"count": len(due)})
    return len(due), outcome
