"""The summary's channel section: a line per channel, the agent's replies, the sandbox's view,
and the checks that say whether all of it is what it should be."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from api.demo.channels import ChannelPlan, Reply
from api.demo.checks import Check, check
from api.demo.observe_channels import ChannelSeen, ReplyDeadLetter, SentRow
from api.demo.outbound import SentReply
from api.demo.posting import Answer
from api.demo.provider_sandbox import CallbackSent, SandboxMail, SandboxRequest
from api.demo.seed import CHANNEL_ORDER, Seeded
from engine.events import ChannelType
from engine.phone import normalize_phone

# Which sandbox provider serves each channel type.
PROVIDER = {
    ChannelType.WHATSAPP: "whatsapp",
    ChannelType.MESSENGER: "messenger",
    ChannelType.INSTAGRAM: "instagram",
    ChannelType.TELEGRAM: "telegram",
    ChannelType.SMS: "twilio",
    ChannelType.EMAIL: "smtp",
}
_PHONE_CHANNELS = {ChannelType.WHATSAPP, ChannelType.SMS}


@dataclass(frozen=True)
class ChannelLine:
    channel: str
    name: str
    webhooks_accepted: int
    webhooks_rejected: int
    callbacks_accepted: int  # status webhooks the sandbox posted for our sends
    callbacks_rejected: int
    contacts: int
    tickets: int
    messages_in: int
    messages_out: int
    outbound: dict[str, int]  # delivery status -> outbound messages in it


@dataclass(frozen=True)
class ReplyLine:
    channel: str
    to: str
    planned: str
    status: str
    error_code: str | None
    error: str | None
    attempts: int  # send attempts the engine counted (a wait for its own rate limit is one)
    provider_calls: tuple[str, ...]  # what the sandbox answered each call: "429", "200"…
    dead_letter: str | None
    seconds: float
    ok: bool


@dataclass(frozen=True)
class ProviderTraffic:
    provider: str
    requests: int  # every API call: sends, and media look-ups for inbound downloads
    sends: int  # calls addressed to a customer (mail: messages taken)
    faulted: int  # calls the sandbox failed on purpose
    callbacks: int  # status webhooks it posted to the engine


@dataclass(frozen=True)
class SandboxSeen:
    requests: tuple[SandboxRequest, ...]
    mail: tuple[SandboxMail, ...]
    callbacks: tuple[CallbackSent, ...]


@dataclass(frozen=True)
class ChannelSection:
    channels: tuple[ChannelLine, ...]
    replies: tuple[ReplyLine, ...]
    sandbox: tuple[ProviderTraffic, ...]
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class ReplyFacts:
    """Everything known about one reply once it settled."""

    sent: SentReply
    row: SentRow
    dead_letter: ReplyDeadLetter | None


def _same_address(channel: ChannelType, a: str | None, b: str) -> bool:
    if a is None:
        return False
    if channel in _PHONE_CHANNELS:
        return normalize_phone(a) == normalize_phone(b)
    return a.lower() == b.lower()


def _calls(reply: Reply, seeded: Seeded, sandbox: SandboxSeen) -> list[SandboxRequest]:
    """The provider calls the sandbox recorded for `reply` (by channel account and recipient)."""
    account = seeded.channels[reply.channel].external_id
    return [
        r
        for r in sandbox.requests
        if r.provider == PROVIDER[reply.channel]
        and r.account == account
        and _same_address(reply.channel, r.recipient, reply.recipient)
    ]


def _mails(reply: Reply, sandbox: SandboxSeen) -> list[SandboxMail]:
    return [
        m
        for m in sandbox.mail
        if any(_same_address(reply.channel, t, reply.recipient) for t in m.rcpt_tos)
    ]


def _reached(facts: ReplyFacts, seeded: Seeded, sandbox: SandboxSeen) -> bool:
    """Whether the provider got the reply, addressed to its customer (with the id we keep)."""
    reply, row = facts.sent.reply, facts.row
    if reply.channel is ChannelType.EMAIL:
        return any(m.message_id == row.provider_message_id for m in _mails(reply, sandbox))
    calls = _calls(reply, seeded, sandbox)
    if row.status == "failed":
        return bool(calls)  # the provider refused it: it got there all the same
    return any(c.message_id == row.provider_message_id for c in calls)


def _call_codes(facts: ReplyFacts, seeded: Seeded, sandbox: SandboxSeen) -> tuple[str, ...]:
    reply = facts.sent.reply
    if reply.channel is ChannelType.EMAIL:
        return tuple("250" for _ in _mails(reply, sandbox))
    return tuple(str(c.status) for c in _calls(reply, seeded, sandbox))


def _retried(facts: ReplyFacts, seeded: Seeded, sandbox: SandboxSeen) -> bool:
    """A faulted call, then an answered one, and the reply not failed."""
    calls = _calls(facts.sent.reply, seeded, sandbox)
    faulted = [i for i, c in enumerate(calls) if c.fault is not None]
    fine = [i for i, c in enumerate(calls) if 200 <= c.status < 300]
    return bool(faulted and fine and fine[-1] > faulted[0] and facts.row.status != "failed")


def _reply_line(facts: ReplyFacts, seeded: Seeded, sandbox: SandboxSeen) -> ReplyLine:
    sent, row, dead = facts.sent, facts.row, facts.dead_letter
    return ReplyLine(
        channel=sent.reply.channel.value,
        to=sent.reply.contact,
        planned=sent.reply.planned,
        status=row.status,
        error_code=row.error_code,
        error=row.error_message,
        attempts=row.attempts,
        provider_calls=_call_codes(facts, seeded, sandbox),
        dead_letter=dead.error_class if dead else None,
        seconds=sent.seconds,
        ok=sent.as_planned,
    )


def build_channel_section(
    *,
    seeded: Seeded,
    plan: ChannelPlan,
    answers: Sequence[Answer],
    seen: Mapping[int, ChannelSeen],
    replies: Sequence[ReplyFacts],
    sandbox: SandboxSeen,
    email_answer_quotes: int,
) -> ChannelSection:
    """Combine what was sent, what the engine stored and what the sandbox saw."""
    lines, checks = [], []
    callbacks = Counter((c.provider, c.accepted) for c in sandbox.callbacks)
    for kind in CHANNEL_ORDER:
        ch = seeded.channels[kind]
        mine = [a for a in answers if a.post.channel is kind]
        got = seen.get(ch.id) or ChannelSeen(0, 0, 0, 0, {}, frozenset())
        provider = PROVIDER[kind]
        lines.append(
            ChannelLine(
                channel=kind.value,
                name=ch.name,
                webhooks_accepted=sum(a.accepted for a in mine),
                webhooks_rejected=sum(not a.accepted for a in mine),
                callbacks_accepted=callbacks[(provider, True)],
                callbacks_rejected=callbacks[(provider, False)],
                contacts=got.contacts,
                tickets=got.tickets,
                messages_in=got.messages_in,
                messages_out=got.messages_out,
                outbound=got.outbound,
            )
        )
        if kind is not ChannelType.WHATSAPP:  # its own checks say the same, in more detail
            checks += _channel_checks(kind, mine, got, plan.chats[kind])
    with_tickets = sum(line.tickets > 0 for line in lines)
    checks.insert(0, check("channels with at least one ticket", len(CHANNEL_ORDER), with_tickets))
    checks += _reply_checks(replies, seeded, sandbox, email_answer_quotes)
    return ChannelSection(
        channels=tuple(lines),
        replies=tuple(_reply_line(f, seeded, sandbox) for f in replies),
        sandbox=_traffic(sandbox),
        checks=tuple(checks),
    )


def _channel_checks(
    kind: ChannelType, answers: Sequence[Answer], got: ChannelSeen, chats: int
) -> list[Check]:
    expected_ids = {i for a in answers if a.post.expect_status == 200 for i in a.post.message_ids}
    forged = sum(a.post.expect_status == 401 for a in answers)
    return [
        check(
            f"{kind}: webhooks answered as expected ({forged} forged one refused with 401)",
            len(answers),
            sum(a.as_expected for a in answers),
        ),
        check(f"{kind}: tickets, one per customer chat", chats, got.tickets),
        Check(
            f"{kind}: messages, exactly one per provider message id",
            len(expected_ids),
            len(got.inbound_ids),
            got.inbound_ids == expected_ids,
        ),
    ]


def _reply_checks(
    replies: Sequence[ReplyFacts], seeded: Seeded, sandbox: SandboxSeen, answer_quotes: int
) -> list[Check]:
    plans = [f.sent.reply for f in replies]
    coded = [f for f in replies if f.sent.reply.expect_code is not None]
    faulted = [
        f
        for f in replies
        if f.sent.reply.fault is not None
        and f.sent.reply.fault.mode in ("rate_limit", "server_error")
    ]
    unsent = [f for f in replies if not f.sent.reply.reaches_provider]
    failing = [r for r in plans if r.expect_status == "failed"]
    codes = ", ".join(str(f.sent.reply.expect_code) for f in coded)
    return [
        check(
            "replies that ended as planned", len(replies), sum(f.sent.as_planned for f in replies)
        ),
        check(
            "replies the sandbox got, addressed to their customer",
            sum(r.reaches_provider for r in plans),
            sum(_reached(f, seeded, sandbox) for f in replies if f.sent.reply.reaches_provider),
        ),
        check(
            f"failed replies carrying the expected code ({codes})",
            len(coded),
            sum(
                f.row.status == "failed" and f.row.error_code == f.sent.reply.expect_code
                for f in coded
            ),
        ),
        check(
            "provider calls for the reply to the customer who sent STOP",
            0,
            sum(len(_calls(f.sent.reply, seeded, sandbox)) for f in unsent),
        ),
        check(
            "dead letters of the send actor, one per failed reply",
            len(failing),
            sum(f.dead_letter is not None for f in replies),
        ),
        check(
            "replies sent after a 429 or a 5xx (retried, not failed)",
            len(faulted),
            sum(_retried(f, seeded, sandbox) for f in faulted),
        ),
        check(
            "status callbacks the engine accepted",
            len(sandbox.callbacks),
            sum(c.accepted for c in sandbox.callbacks),
        ),
        check("e-mail answers filed on the reply's ticket, quoting it", 1, answer_quotes),
    ]


def _traffic(sandbox: SandboxSeen) -> tuple[ProviderTraffic, ...]:
    calls = Counter(r.provider for r in sandbox.requests)
    sends = Counter(r.provider for r in sandbox.requests if r.recipient is not None)
    faulted = Counter(r.provider for r in sandbox.requests if r.fault is not None)
    callbacks = Counter(c.provider for c in sandbox.callbacks)
    out = [
        ProviderTraffic(p, calls[p], sends[p], faulted[p], callbacks[p])
        for p in PROVIDER.values()
        if p != "smtp"
    ]
    mails = len(sandbox.mail)
    return (*out, ProviderTraffic("smtp", mails, mails, 0, 0))


# rendering --------------------------------------------------------------------------------


def render_channels(
    channels: Sequence[ChannelLine],
    replies: Sequence[ReplyLine],
    sandbox: Sequence[ProviderTraffic],
) -> list[str]:
    """The per-channel table, the replies and the sandbox's count, for people."""
    head = (
        f"  {'channel':<10}{'webhooks ok/refused':>20}{'callbacks':>11}{'contacts':>10}"
        f"{'tickets':>9}{'in':>5}{'out':>5}  outbound"
    )
    out = ["Channels     " + f"{len(channels)}, each on the provider sandbox", head]
    for c in channels:
        callbacks = f"{c.callbacks_accepted}" + (
            f"/{c.callbacks_rejected}✗" if c.callbacks_rejected else ""
        )
        statuses = ", ".join(f"{n} {s}" for s, n in c.outbound.items()) or "-"
        out.append(
            f"  {c.channel:<10}{f'{c.webhooks_accepted}/{c.webhooks_rejected}':>20}"
            f"{callbacks:>11}{c.contacts:>10}{c.tickets:>9}{c.messages_in:>5}"
            f"{c.messages_out:>5}  {statuses}"
        )
    out.append(
        f"Replies      {len(replies)} posted by the demo admin to "
        "POST /api/v1/tickets/{id}/messages"
    )
    for r in replies:
        out.append(_reply(r))
    calls = ", ".join(_calls_line(t) for t in sandbox)
    posted = sum(t.callbacks for t in sandbox)
    out.append(f"Sandbox      API calls: {calls}; {posted} status callbacks posted to the engine")
    return out


def _calls_line(t: ProviderTraffic) -> str:
    """E.g. `whatsapp 9 (2 sends, 1 faulted)`: calls that are not sends are media look-ups."""
    detail = [f"{t.sends} send{'s' * (t.sends != 1)}"] if t.sends != t.requests else []
    detail += [f"{t.faulted} faulted"] if t.faulted else []
    return f"{t.provider} {t.requests}" + (f" ({', '.join(detail)})" if detail else "")


def _reply(r: ReplyLine) -> str:
    mark = "ok" if r.ok else f"NOT AS PLANNED ({r.planned})"
    code = f" {r.error_code}" if r.error_code else ""
    calls = " → ".join(r.provider_calls) if r.provider_calls else "none"
    dead = f", dead letter {r.dead_letter}" if r.dead_letter else ""
    tries = f"{r.attempts} attempt{'s' * (r.attempts != 1)}"
    return (
        f"  {r.channel:<10}{r.to[:26]:<27}{r.status + code:<17}{tries}, provider calls: "
        f"{calls}{dead}; {r.seconds} s, {mark}"
    )
