"""The demo's summary: what was sent, what became of it, and whether that is what it should be."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from api.demo.channel_report import (
    ChannelLine,
    ChannelSection,
    ProviderTraffic,
    ReplyLine,
    render_channels,
)
from api.demo.checks import Check, check
from api.demo.observe import ContactRow, DeadLetterRow, Observed
from api.demo.posting import Answer
from api.demo.traffic import COPIES_AT_ONCE, COPIES_LATER, Plan
from engine.events import ChannelType
from engine.phone import normalize_phone


@dataclass(frozen=True)
class ContactLine:
    name: str | None
    phone: str | None
    seen_as: tuple[str, ...]
    messages: int
    ticket: str | None
    ticket_status: str | None
    unread: int


@dataclass(frozen=True)
class WebhookCounts:
    sent: int
    accepted: int
    rejected: int
    by_status: dict[str, int]  # HTTP status code -> webhooks answered with it
    stored_in_inbox: int
    redeliveries_dropped_at_the_door: int  # identical bytes seen before


@dataclass(frozen=True)
class MessageCounts:
    stored: int
    distinct_wamids_sent: int
    deliveries_sent: int  # message ids carried by accepted webhooks, copies included
    duplicates_dropped: int
    duplicated_customer: str  # whose every webhook came COPIES_PER_WEBHOOK times
    copies_per_webhook: int
    quoting_an_earlier_message: int
    answering_a_business_message: int
    by_type: dict[str, int]


@dataclass(frozen=True)
class StatusCount:
    recorded: int
    waiting_for_outbound_message: int


@dataclass(frozen=True)
class ReactionCounts:
    sent: int
    removed: int
    on_record: int
    emoji: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """One run of the demo. `as_json` prints it whole; `render` prints it for people."""

    run: dict[str, str | int | float]
    channels: tuple[ChannelLine, ...]
    replies: tuple[ReplyLine, ...]
    sandbox: tuple[ProviderTraffic, ...]
    webhooks: WebhookCounts
    inbox: dict[str, int]
    contacts: tuple[ContactLine, ...]
    tickets: dict[str, dict[str, int]]  # status -> {"tickets": n, "unread": n}
    messages: MessageCounts
    statuses: dict[str, StatusCount]
    reactions: ReactionCounts
    provider_notices: tuple[str, ...]
    dead_letters: tuple[DeadLetterRow, ...]
    checks: tuple[Check, ...]
    processes: tuple[str, ...]
    leftover_processes: tuple[str, ...]
    login: dict[str, str]
    next_steps: tuple[str, ...]

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def build_report(
    plan: Plan,
    answers: Sequence[Answer],
    seen: Observed,
    *,
    channels: ChannelSection,
    run: dict[str, str | int | float],
    login: dict[str, str],
) -> Report:
    """Combine what was sent with what was observed; processes are filled in after the stop.

    `answers` are every channel's; the WhatsApp sections read only WhatsApp's.
    """
    deliveries = [a for a in answers if a.post.channel is ChannelType.WHATSAPP]
    by_status = Counter(d.status_code for d in deliveries)
    accepted = [d for d in deliveries if d.accepted]
    deliveries_sent = sum(len(d.post.message_ids) for d in accepted)
    expected = plan.expected_wamids
    stored = len(seen.stored_wamids)
    live = sum(n for s, (n, _) in seen.tickets.items() if s in ("pending", "open"))
    n = len(plan.customers)
    checks = (
        check(
            "whatsapp: webhooks answered as expected",
            len(deliveries),
            sum(d.as_expected for d in deliveries),
        ),
        check("forged signature answered 401", 1, by_status[401]),
        check("body that is not JSON answered 400", 1, by_status[400]),
        check("inbox rows still pending", 0, seen.inbox.get("pending", 0)),
        check("contacts, one per customer", n, len(seen.contacts)),
        check("contacts behind the two forms of one Brazilian number", 1, seen.brazil_contacts),
        check("live tickets, one per contact", n, live),
        Check(
            "messages, exactly one per distinct wamid",
            len(expected),
            stored,
            seen.stored_wamids == expected,
        ),
        check("replies linked to the earlier message they quote", 1, seen.quoting_stored),
        check(
            "reactions on record (2 sent, 1 removed)",
            plan.reactions_sent - plan.reactions_removed,
            len(seen.reactions),
        ),
        check(
            "delivery statuses of made-up outbound wamids, kept waiting",
            sum(k for _, k in plan.statuses_sent),
            sum(w for _, w in seen.statuses.values()),
        ),
        check(
            "dead letters (the message without a sender)",
            1,
            sum(
                d.error_class == "InvalidPayloadError" and "from" in d.reason
                for d in seen.dead_letters
            ),
        ),
    )
    return Report(
        run=run,
        channels=channels.channels,
        replies=channels.replies,
        sandbox=channels.sandbox,
        webhooks=WebhookCounts(
            sent=len(deliveries),
            accepted=len(accepted),
            rejected=len(deliveries) - len(accepted),
            by_status={str(code): k for code, k in sorted(by_status.items())},
            stored_in_inbox=sum(d.stored for d in accepted),
            redeliveries_dropped_at_the_door=sum(d.duplicates for d in accepted),
        ),
        inbox=seen.inbox,
        contacts=tuple(_contact_line(c, plan) for c in seen.contacts),
        tickets={s: {"tickets": k, "unread": u} for s, (k, u) in seen.tickets.items()},
        messages=MessageCounts(
            stored=stored,
            distinct_wamids_sent=len(expected),
            deliveries_sent=deliveries_sent,
            duplicates_dropped=deliveries_sent - stored,
            duplicated_customer=plan.customers[plan.duplicated_customer].name,
            copies_per_webhook=1 + COPIES_AT_ONCE + COPIES_LATER,
            quoting_an_earlier_message=seen.quoting_stored,
            answering_a_business_message=seen.quoting_business,
            by_type=seen.messages_by_type,
        ),
        statuses={s: StatusCount(k, w) for s, (k, w) in seen.statuses.items()},
        reactions=ReactionCounts(
            sent=plan.reactions_sent,
            removed=plan.reactions_removed,
            on_record=len(seen.reactions),
            emoji=seen.reactions,
        ),
        provider_notices=seen.notices,
        dead_letters=seen.dead_letters,
        checks=checks + channels.checks,
        processes=(),
        leftover_processes=(),
        login=login,
        next_steps=(),
    )


def _contact_line(row: ContactRow, plan: Plan) -> ContactLine:
    forms: tuple[str, ...] = ()
    for c in plan.customers:
        if normalize_phone(c.wa_id) == row.phone:
            forms = (c.wa_id, c.old_wa_id) if c.old_wa_id else (c.wa_id,)
    return ContactLine(
        row.name, row.phone, forms, row.messages, row.ticket, row.ticket_status, row.unread
    )


def as_json(report: Report) -> str:
    return json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False, default=str)


def render(report: Report) -> str:
    """The summary for people: a few aligned sections, then the checks and how to go on."""
    w, m, r, reactions = report.webhooks, report.messages, report.run, report.reactions
    codes = ", ".join(f"{k}× {code}" for code, k in w.by_status.items())
    tickets = ", ".join(
        f"{v['tickets']} {s} ({v['unread']} unread)" for s, v in report.tickets.items()
    )
    statuses = ", ".join(f"{v.recorded} {s}" for s, v in report.statuses.items())
    waiting = sum(v.waiting_for_outbound_message for v in report.statuses.values())
    failed = report.failed_checks
    customers = sum(c.contacts for c in report.channels)
    posted = sum(c.webhooks_accepted + c.webhooks_rejected for c in report.channels)
    out = [
        f"FlowDesk demo: {_plural(len(report.channels), 'channel')}, "
        f"{_plural(customers, 'customer')}, {posted} signed webhooks over HTTP, "
        f"{_plural(len(report.replies), 'reply')} through the provider sandbox, "
        f"{r['wall_time_s']} s in all",
        "",
        *render_channels(report.channels, report.replies, report.sandbox),
        "",
        "WhatsApp in detail",
        _line("Webhooks", f"{w.sent} sent: {codes}"),
        _line("", f"{w.stored_in_inbox} stored in the inbox; {w.redeliveries_dropped_at_the_door} "
              "identical redeliveries dropped at the door"),
        _line("Inbox", _pairs(report.inbox)),
        _line("Contacts", str(len(report.contacts))),
        *(_contact(c) for c in report.contacts),
        _line("Tickets", tickets),
        _line("Messages", f"{m.stored} stored for {m.distinct_wamids_sent} distinct wamids "
              f"delivered {m.deliveries_sent} times: {m.duplicates_dropped} duplicates dropped"),
        _line("", f"({m.duplicated_customer}'s webhooks came {m.copies_per_webhook} times each, "
              "some at once, one after processing, and the first message once more in a new "
              "envelope)"),
        _line("", _pairs(m.by_type)),
        _line("", f"{m.quoting_an_earlier_message} quoting an earlier message, "
              f"{m.answering_a_business_message} answering business messages (buttons, lists)"),
        _line("Statuses", f"{statuses}; {waiting} of them wait for an outbound message this "
              "engine never sent (made-up wamids)"),
        _line("Reactions", f"{reactions.sent} sent, {reactions.removed} removed, "
              f"{reactions.on_record} on record"),
        _line("Notices", f"{len(report.provider_notices)} inbox rows noted"),
        *(f"  {n}" for n in report.provider_notices),
        _line("Dead letters", f"{len(report.dead_letters)} of the inbound pipeline"),
        *(f"  {d.error_class} in {d.actor}: {d.reason}" for d in report.dead_letters),
        _line("Checks", f"{len(report.checks) - len(failed)}/{len(report.checks)} passed"),
        *(f"  FAILED {c.what}: expected {c.expected}, found {c.found}" for c in failed),
        _line("Processes", "; ".join(report.processes)),
        _line("", "STILL RUNNING, killed: " + ", ".join(report.leftover_processes)
              if report.leftover_processes else "nothing left running"),
        "",
        *report.next_steps,
    ]  # fmt: skip
    return "\n".join(out)


def _contact(c: ContactLine) -> str:
    return (
        f"  {c.name or '?':<18} {c.phone or '':<15} ticket {c.ticket or '-'} "
        f"{c.ticket_status or '-'}, {c.unread} unread (wrote as {' and '.join(c.seen_as)})"
    )


def _line(title: str, text: str) -> str:
    return f"{title:<13}{text}"


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _plural(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"
