"""automate: what the engine does by itself about each new inbound message on a ticket.

In order, per message: auto-tags; a close keyword closes the ticket; a new ticket no bot
handles goes to its channel's default queue; outside business hours the absence message (once
per ticket per closed period) and no bot; else the chat-flow bot; else the first matching
auto-reply. Every message it answers with is recorded `pending` through the outbound pipeline
(record_send) and listed in `outcome.sends` for the worker to enqueue after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import Connection

from engine.automation import bot
from engine.automation.catalog import get_default_flow_id, get_flow
from engine.automation.flows import ChatFlowDefinition, FlowMessage
from engine.automation.rules import (
    AutoReply,
    AutoTagRule,
    get_auto_replies,
    get_auto_tag_rules,
    out_of_hours_sent,
    pick_auto_reply,
    tag_contact,
    tags_to_apply,
)
from engine.automation.templates import TemplateContext, render
from engine.automation.tickets import (
    TicketContext,
    close_by_customer,
    finish_bot,
    get_ticket_context,
    get_ticket_contexts,
    queue_new_ticket,
    save_bot_state,
)
from engine.events import InboundMessage
from engine.routing.hours import closed_period_start, effective_hours
from engine.settings_registry import BusinessHours
from engine.store.conversations import insert_ticket_event
from engine.store.settings import get_setting
from pipelines.inbound.models import BatchOutcome, RoutedEvent
from pipelines.outbound.request import SendRequest, record_send

log = logging.getLogger(__name__)


@dataclass
class TenantAutomation:
    """One tenant's rules, read once per batch; flows are read when first needed."""

    tenant_id: int
    auto_replies: list[AutoReply]
    tag_rules: list[AutoTagRule]
    out_of_hours_message: str | None
    default_flow_id: int | None
    flows: dict[int, ChatFlowDefinition | None] = field(default_factory=dict)
    hours_by_queue: dict[int | None, BusinessHours | None] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, tenant_id: int) -> TenantAutomation:
        return cls(
            tenant_id=tenant_id,
            auto_replies=get_auto_replies(conn, tenant_id=tenant_id),
            tag_rules=get_auto_tag_rules(conn, tenant_id=tenant_id),
            out_of_hours_message=get_setting(conn, tenant_id=tenant_id, key="out_of_hours_message"),
            default_flow_id=get_default_flow_id(conn, tenant_id=tenant_id),
        )

    def hours(self, conn: Connection, queue_id: int | None) -> BusinessHours | None:
        """The business hours a ticket in `queue_id` keeps, read once per queue per batch."""
        if queue_id not in self.hours_by_queue:
            self.hours_by_queue[queue_id] = effective_hours(
                conn, tenant_id=self.tenant_id, queue_id=queue_id
            )
        return self.hours_by_queue[queue_id]

    def flow(self, conn: Connection, flow_id: int | None) -> ChatFlowDefinition | None:
        if flow_id is None:
            return None
        if flow_id not in self.flows:
            self.flows[flow_id] = get_flow(conn, tenant_id=self.tenant_id, flow_id=flow_id)
        return self.flows[flow_id]

    def flow_for(
        self, conn: Connection, ticket: TicketContext
    ) -> tuple[int, ChatFlowDefinition] | None:
        """The flow of the ticket's bot, else its channel's, else the tenant default; a flow
        with a test phone only for that contact."""
        for flow_id in (ticket.chat_flow_id, ticket.channel_flow_id, self.default_flow_id):
            flow = self.flow(conn, flow_id)
            if flow_id is not None and flow is not None:
                return (flow_id, flow) if flow.applies_to(ticket.contact_phone) else None
        return None


def automate(
    events: Sequence[RoutedEvent],
    outcome: BatchOutcome,
    *,
    conn: Connection,
    now: datetime | None = None,
) -> BatchOutcome:
    """Run automation over the batch's new inbound messages, after persist; `outcome` extended.

    Side effects: ticket queue/user/status/bot state, contact tags, ticket events, pending
    outbound messages and outbox rows, all in the caller's tenant transaction. A redelivered
    message never gets here (route gives it no ticket), and one message twice in a batch is
    handled once, so automation runs once per message.
    """
    at = now or datetime.now(UTC)
    seen: set[tuple[int, str]] = set()
    todo: list[tuple[int, int, str | None]] = []  # (tenant, ticket, what the customer said)
    for r in events:
        event = r.enriched.validated.event
        if not isinstance(event, InboundMessage) or r.ticket is None:
            continue
        key = (r.enriched.validated.channel_id, event.provider_message_id)
        if key not in seen:
            seen.add(key)
            todo.append((r.enriched.validated.tenant_id, r.ticket.id, event.body))
    if not todo:
        return outcome
    tenant_id = todo[0][0]  # the pipeline runs automate once per tenant
    rules = TenantAutomation.load(conn, tenant_id)
    # Every ticket's context in one round trip; one an earlier message of this batch changed
    # is read again before its next message.
    contexts = get_ticket_contexts(conn, tenant_id=tenant_id, ticket_ids=[t for _, t, _ in todo])
    for _, ticket_id, said in todo:
        ticket = contexts.get(ticket_id)
        if ticket is None:
            ticket = get_ticket_context(conn, tenant_id=tenant_id, ticket_id=ticket_id)
        changed = (
            ticket is not None
            and ticket.status != "closed"
            and _automate_message(conn, rules, ticket, said, outcome, at)
        )
        if changed:
            contexts.pop(ticket_id, None)
    return outcome


def _automate_message(
    conn: Connection,
    rules: TenantAutomation,
    ticket: TicketContext,
    said: str | None,
    outcome: BatchOutcome,
    now: datetime,
) -> bool:
    """Automation for one message; whether the ticket changed (so its context is stale)."""
    tenant_id = rules.tenant_id
    tag_ids = tags_to_apply(rules.tag_rules, channel_id=ticket.channel_id, said=said)
    tag_contact(
        conn,
        tenant_id=tenant_id,
        ticket_id=ticket.id,
        contact_id=ticket.contact_id,
        tag_ids=tag_ids,
    )
    if ticket.is_group:
        return False  # a group chat is many people: no bot, absence message or auto-reply
    found = rules.flow_for(conn, ticket)
    if found is not None and bot.close_requested(found[1], said):
        outcome.outbox_ids += close_by_customer(
            conn, tenant_id=tenant_id, ticket_id=ticket.id, keyword=said or ""
        )
        if found[1].close_message:
            _send(conn, ticket, FlowMessage(text=found[1].close_message), "close", outcome, now)
        return True
    changed = False
    if found is None and _unhandled(ticket) and ticket.channel_queue_id is not None:
        outcome.outbox_ids += queue_new_ticket(
            conn, tenant_id=tenant_id, ticket_id=ticket.id, queue_id=ticket.channel_queue_id
        )
        ticket = get_ticket_context(conn, tenant_id=tenant_id, ticket_id=ticket.id) or ticket
        changed = True
    answered = False
    # Hours matter only to a bot or an absence message; most tenants' batches skip them.
    if found is not None or rules.out_of_hours_message is not None:
        period = closed_period_start(rules.hours(conn, ticket.queue_id), now)
        if period is not None:
            answered = _out_of_hours(conn, rules, ticket, period, outcome, now)
        else:
            answered = _run_bot(conn, ticket, said, found, outcome, now)
    if not answered:
        reply = pick_auto_reply(
            rules.auto_replies,
            channel_id=ticket.channel_id,
            said=said,
            now=now,
            time_zone=ticket.time_zone,
        )
        if reply is not None:
            _send(conn, ticket, FlowMessage(text=reply.reply), "auto_reply", outcome, now)
            answered = True
    return changed or answered


def _unhandled(ticket: TicketContext) -> bool:
    """Nobody has the ticket yet: no queue, no agent, never a bot."""
    return (
        ticket.status == "pending"
        and ticket.queue_id is None
        and ticket.user_id is None
        and ticket.chat_flow_id is None
    )


def _out_of_hours(
    conn: Connection,
    rules: TenantAutomation,
    ticket: TicketContext,
    period: datetime,
    outcome: BatchOutcome,
    now: datetime,
) -> bool:
    """The absence message, once per ticket per closed period; whether it went out now."""
    text = rules.out_of_hours_message
    if text is None:
        return False
    if out_of_hours_sent(conn, tenant_id=rules.tenant_id, ticket_id=ticket.id, period=period):
        return True  # already told: say nothing more until the next closed period
    insert_ticket_event(
        conn,
        tenant_id=rules.tenant_id,
        ticket_id=ticket.id,
        type="out_of_hours_sent",
        data={"period_start": period.isoformat()},
    )
    _send(conn, ticket, FlowMessage(text=text), "out_of_hours", outcome, now)
    return True


def _run_bot(
    conn: Connection,
    ticket: TicketContext,
    said: str | None,
    found: tuple[int, ChatFlowDefinition] | None,
    outcome: BatchOutcome,
    now: datetime,
) -> bool:
    """Start or advance the ticket's bot; whether a bot handled the message."""
    if found is None:
        return False
    flow_id, flow = found
    state = ticket.bot_state()
    if state is not None:
        turn = bot.answer(flow, state, said)
    elif _unhandled(ticket):
        turn = bot.start(flow)
    else:
        return False
    apply_turn(conn, ticket, flow_id, flow, turn, outcome, now)
    return True


def apply_turn(
    conn: Connection,
    ticket: TicketContext,
    flow_id: int,
    flow: ChatFlowDefinition | None,
    turn: bot.Turn,
    outcome: BatchOutcome,
    now: datetime,
) -> None:
    """Audit the turn's steps, send its messages, then keep its state or end the bot."""
    tenant_id = ticket.tenant_id
    for step in turn.steps:
        insert_ticket_event(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket.id,
            type=step.type,
            data={**step.data, "chat_flow_id": flow_id},
        )
    for message in turn.messages:
        _send(conn, ticket, message, "bot", outcome, now)
    if turn.state is not None:
        save_bot_state(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket.id,
            flow_id=flow_id,
            state=turn.state,
            timeout_s=None if flow is None else flow.inactivity_timeout_s,
            now=now,
        )
    if turn.ending is not None:
        outcome.outbox_ids += finish_bot(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket.id,
            ending=turn.ending,
            default_queue_id=ticket.channel_queue_id,
        )


def _send(
    conn: Connection,
    ticket: TicketContext,
    message: FlowMessage,
    kind: str,
    outcome: BatchOutcome,
    now: datetime,
) -> None:
    """Record one automated message `pending` on the ticket, like any other send."""
    context = TemplateContext(
        contact_name=ticket.contact_name,
        protocol=ticket.protocol,
        agent=ticket.agent_name,
        queue=ticket.queue_name,
        time_zone=ticket.time_zone,
        now=now,
    )
    body = render(message.text, context).strip() if message.text else ""
    try:
        request = SendRequest(
            body=body or None, media_url=message.media_url, media_type=message.media_type
        )
    except ValidationError:
        log.info("automated message left empty; not sent", extra={"ticket_id": ticket.id})
        return
    recorded = record_send(
        conn,
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        request=request,
        user_id=None,
        send_type="bot",
        event_data={"automation": kind},
    )
    outcome.sends.append(recorded.message_id)
    outcome.outbox_ids += recorded.outbox_ids
