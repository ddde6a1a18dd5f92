"""WhatsApp demo traffic: a plan of signed webhooks covering every shape, in three phases."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from api.demo.customers import SHAPES, Customer, opener, say, thanks
from api.demo.posting import Post
from api.demo.whatsapp import BusinessNumber, Part, change, envelope, error, message, sign, status
from api.demo.whatsapp import wamid as new_wamid
from engine.events import ChannelType

COPIES_AT_ONCE = 2  # extra copies of the duplicated customer's webhooks, sent concurrently
COPIES_LATER = 1  # and one more of each after the originals were processed
PHASE_TITLES = ("first messages", "follow-ups", "late redeliveries")
_VALUE_ERRORS = [
    error(131000, "Something went wrong", "Message failed to send due to an unknown error."),
    error(130472, "User's number is part of an experiment", "Experiment group."),
]


@dataclass(frozen=True)
class Webhook:
    """One POST. `wamids` are the customer messages in it that must each become one message."""

    label: str
    body: bytes
    customer: int | None = None
    wamids: tuple[str, ...] = ()
    forged: bool = False
    expect_status: int = 200


@dataclass(frozen=True)
class Phase:
    title: str
    webhooks: tuple[Webhook, ...]


@dataclass(frozen=True)
class Plan:
    """Everything the demo sends, and what it should leave behind."""

    business: BusinessNumber
    customers: tuple[Customer, ...]
    phases: tuple[Phase, ...]
    brazil_wamids: tuple[str, str]  # one person, 13-digit and 12-digit forms of her number
    duplicated_customer: int
    reactions_sent: int
    reactions_removed: int
    statuses_sent: tuple[tuple[str, int], ...]

    @property
    def expected_wamids(self) -> frozenset[str]:
        """Ids of the messages that should each be stored exactly once."""
        return frozenset(
            w
            for phase in self.phases
            for hook in phase.webhooks
            if hook.expect_status == 200
            for w in hook.wamids
        )


@dataclass
class _Planner:
    rng: random.Random
    business: BusinessNumber
    customers: tuple[Customer, ...]
    clock: int
    phases: list[list[Webhook]] = field(default_factory=lambda: [[], [], []])
    openers: dict[int, Part] = field(default_factory=dict)

    def tick(self) -> int:
        self.clock += self.rng.randint(3, 40)
        return self.clock

    def msg(
        self,
        i: int,
        kind: str,
        block: object | None,
        *,
        sender: str = "",
        context: Part | None = None,
        referral: Part | None = None,
        errors: Sequence[Part] = (),
    ) -> Part:
        wa_id = sender or self.customers[i].wa_id
        return message(
            kind,
            block,
            sender=wa_id,
            message_id=new_wamid(self.rng, wa_id),
            timestamp=self.tick(),
            context=context,
            referral=referral,
            errors=errors,
        )

    def shape(self, shape: str, i: int) -> Part:
        said = say(shape, self.customers[i].lang, self.rng)
        context = self.context(self.outbound_id(i)) if said.answers_business else None
        return self.msg(
            i, said.kind, said.block, context=context, referral=said.referral, errors=said.errors
        )

    def outbound_id(self, i: int) -> str:
        """A made-up id of a message the business sent from elsewhere (this engine never did)."""
        return new_wamid(self.rng, self.customers[i].wa_id, outbound=True)

    def context(self, outbound: str) -> Part:
        return {"from": self.business.display_phone_number, "id": outbound}

    def post(self, phase: int, label: str, i: int | None, entries: list[list[Part]]) -> None:
        carried = [
            str(m["id"])
            for changes in entries
            for ch in changes
            for m in _messages(ch)
            if m.get("type") != "reaction" and "from" in m
        ]
        body = envelope(entries, business=self.business)
        self.phases[phase].append(Webhook(label, body, customer=i, wamids=tuple(carried)))

    def single(self, phase: int, label: str, i: int, part: Part) -> str:
        c = self.customers[i]
        profile = (c.name, str(part["from"]))
        self.post(phase, label, i, [[change(self.business, profiles=[profile], messages=[part])]])
        return str(part["id"])


def make_plan(
    rng: random.Random, business: BusinessNumber, customers: tuple[Customer, ...], *, now: int
) -> Plan:
    """Three phases: first messages; follow-ups that refer back; late redeliveries and undo.

    Each phase is sent once the previous one is processed, as it would happen in real life
    (a reaction needs the message it reacts to stored first).
    """
    p = _Planner(rng, business, customers, clock=now - 1800)
    n, last = len(customers), len(customers) - 1
    ana = customers[0]
    assert ana.old_wa_id is not None, "the first customer writes from both number forms"

    # 1: every customer opens a conversation, then each other shape comes from someone.
    for i, c in enumerate(customers):
        p.openers[i] = p.msg(i, "text", {"body": opener(c.lang, rng)})
        p.single(0, "text", i, p.openers[i])
    old = p.msg(0, "text", {"body": "Escrevo do número antigo."}, sender=ana.old_wa_id)
    old_id = p.single(0, "text from the old 12-digit number", 0, old)
    for k, shape in enumerate(SHAPES):
        p.single(0, shape, (k + 1) % n, p.shape(shape, (k + 1) % n))
    out_1, out_2 = p.outbound_id(0), p.outbound_id(1 % n)
    _batch(p, outbound=out_2)
    p.post(0, "value-level errors", None, [[change(business, errors=_VALUE_ERRORS)]])
    _malformed(p, 2 % n)
    _rejected(p, 3 % n)
    for state in ("sent", "delivered"):
        st = status(out_1, state, recipient=ana.wa_id, timestamp=p.tick())
        p.post(0, f"status {state}", None, [[change(business, statuses=[st])]])

    # 2: a reply quoting an earlier message, two reactions, thanks, the last statuses.
    quote: Part = {"from": ana.wa_id, "id": p.openers[0]["id"]}
    again = p.msg(0, "text", {"body": "Alguma novidade?"}, context=quote)
    p.single(1, "reply with context", 0, again)
    p.single(1, "reaction", 0, p.msg(0, "reaction", {"message_id": old_id, "emoji": "👍"}))
    heart = {"message_id": p.openers[last]["id"], "emoji": "❤️"}
    p.single(1, "reaction", last, p.msg(last, "reaction", heart))
    for i in range(2, n, 2):
        p.single(1, "text", i, p.msg(i, "text", {"body": thanks(customers[i].lang)}))
    read = status(out_1, "read", recipient=ana.wa_id, timestamp=p.tick())
    p.post(1, "status read", None, [[change(business, statuses=[read])]])
    gone = error(131026, "Message undeliverable", "Message Undeliverable.")
    failed = status(
        out_2, "failed", recipient=customers[1 % n].wa_id, timestamp=p.tick(), error=gone
    )
    p.post(1, "status failed", None, [[change(business, statuses=[failed])]])

    # 3: Ana takes her reaction back; one customer's webhooks all arrive again.
    p.single(2, "reaction removed", 0, p.msg(0, "reaction", {"message_id": old_id}))
    _duplicate(p, 1 % n)
    return Plan(
        business=business,
        customers=customers,
        phases=tuple(Phase(t, tuple(w)) for t, w in zip(PHASE_TITLES, p.phases, strict=True)),
        brazil_wamids=(str(p.openers[0]["id"]), old_id),
        duplicated_customer=1 % n,
        reactions_sent=2,
        reactions_removed=1,
        statuses_sent=(("sent", 2), ("delivered", 1), ("read", 1), ("failed", 1)),
    )


def _batch(p: _Planner, *, outbound: str) -> None:
    """One POST with two entries, three changes, messages from three customers and a status."""
    n = len(p.customers)
    a, b, c = 2 % n, 3 % n, 4 % n
    ca, cb, cc = p.customers[a], p.customers[b], p.customers[c]
    first = change(
        p.business,
        profiles=[(ca.name, ca.wa_id), (cb.name, cb.wa_id)],
        messages=[p.msg(a, "text", {"body": thanks(ca.lang)}), p.shape("image", b)],
    )
    sent = status(outbound, "sent", recipient=p.customers[1 % n].wa_id, timestamp=p.tick())
    second = change(
        p.business,
        profiles=[(cc.name, cc.wa_id)],
        messages=[p.msg(c, "text", {"body": "?"}), p.shape("location", c)],
    )
    entries = [[first, change(p.business, statuses=[sent])], [second]]
    p.post(0, "batch: 2 entries, 3 changes", None, entries)


def _rejected(p: _Planner, i: int) -> None:
    """A forged signature (401) and a correctly signed body that is not JSON (400)."""
    c = p.customers[i]
    part = p.msg(i, "text", {"body": "Seu Pix está pendente, clique aqui"})
    changes = [change(p.business, profiles=[(c.name, c.wa_id)], messages=[part])]
    forged = Webhook(
        "forged signature",
        envelope([changes], business=p.business),
        wamids=(str(part["id"]),),
        forged=True,
        expect_status=401,
    )
    truncated = b'{"object": "whatsapp_business_account", "entry": [{"id": '
    p.phases[0] += [forged, Webhook("body is not JSON", truncated, expect_status=400)]


def _malformed(p: _Planner, i: int) -> None:
    """A good message next to one without "from": the good one lives, the bad one is parked."""
    c = p.customers[i]
    good = p.msg(i, "text", {"body": "Essa chegou certinho" if c.lang == "pt" else "This one's ok"})
    bad = p.msg(i, "text", {"body": "?"})
    del bad["from"]
    body = [[change(p.business, profiles=[(c.name, c.wa_id)], messages=[good, bad])]]
    p.post(0, "malformed message (no from)", i, body)


def _duplicate(p: _Planner, i: int) -> None:
    """Every webhook of customer `i` again: copies at once, one more after processing, and a
    message re-sent inside a new envelope (other bytes, same message id)."""
    for phase in (0, 1):
        originals = [w for w in p.phases[phase] if w.customer == i]
        p.phases[phase] += [_copy(w) for w in originals for _ in range(COPIES_AT_ONCE)]
        p.phases[2] += [_copy(w) for w in originals for _ in range(COPIES_LATER)]
    c = p.customers[i]
    news = p.msg(i, "text", {"body": thanks(c.lang)})
    body = [[change(p.business, profiles=[(c.name, c.wa_id)], messages=[p.openers[i], news])]]
    p.post(2, "redelivery in a new envelope", None, body)


def _copy(hook: Webhook) -> Webhook:
    return replace(hook, label=f"{hook.label} (redelivered)")


def _messages(ch: Part) -> list[Part]:
    value = ch.get("value")
    items = value.get("messages", []) if isinstance(value, dict) else []
    return [m for m in items if isinstance(m, dict)]


# sending ----------------------------------------------------------------------------------


def to_posts(phase: Phase, *, url: str, app_secret: str) -> list[Post]:
    """The phase's webhooks signed as Meta signs them (forged ones with another secret)."""
    return [
        Post(
            ChannelType.WHATSAPP,
            hook.label,
            url,
            hook.body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(
                    hook.body, "forged-" + app_secret if hook.forged else app_secret
                ),
            },
            message_ids=hook.wamids,
            expect_status=hook.expect_status,
        )
        for hook in phase.webhooks
    ]
