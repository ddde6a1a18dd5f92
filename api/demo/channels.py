"""What the five other channels' customers write (Messenger, Instagram, Telegram, SMS, e-mail),
and the replies an agent sends on all six with the provider failures each one runs into."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.sandbox.control import FaultSpec
from api.demo.channel_posts import PostBuilder
from api.demo.posting import Post
from api.demo.providers import group_chat, page_scoped_id, photo_sizes, private_chat, telegram_user
from api.demo.seed import Seeded
from api.demo.traffic import Plan
from engine.events import ChannelType

PHASES = 3  # sent alongside the WhatsApp plan's three phases
_FAULT_NAMES = {"rate_limit": "429", "server_error": "5xx", "permanent": "permanent error"}


@dataclass(frozen=True)
class Reply:
    """One agent reply: the ticket it goes on (found by the customer message it answers),
    whom the provider must see it addressed to, and how it should end."""

    channel: ChannelType
    contact: str  # the customer, as the summary names them
    answers: str  # provider id of the customer's message
    recipient: str  # the customer's address as the provider names it
    body: str
    fault: FaultSpec | None = None  # queued in the sandbox just before the reply goes out
    expect_status: str = "sent"
    expect_code: str | None = None
    reaches_provider: bool = True
    quote: bool = False  # quote the answered message (e-mail: In-Reply-To and References)
    wave: int = 0  # a later wave goes out once the earlier ones have settled

    @property
    def planned(self) -> str:
        """What should become of it, in the summary's words."""
        code = f" {self.expect_code}" if self.expect_code else ""
        fault = (
            f" after a {_FAULT_NAMES.get(self.fault.mode, self.fault.mode)}" if self.fault else ""
        )
        return f"{self.expect_status}{code}{fault}"


@dataclass(frozen=True)
class EmailThread:
    """The first mail of the e-mail customer; she answers our reply to it later."""

    sender: tuple[str, str]
    subject: str
    first_message_id: str


@dataclass(frozen=True)
class ChannelPlan:
    phases: tuple[tuple[Post, ...], ...]
    replies: tuple[Reply, ...]
    chats: Mapping[ChannelType, int]  # customer chats per channel, one ticket each
    email_thread: EmailThread


def make_channel_plan(
    rng: random.Random,
    seeded: Seeded,
    whatsapp: Plan,
    *,
    base_url: str,
    sandbox_url: str,
    now: int,
) -> ChannelPlan:
    """A few customers per channel, the shapes each provider is known for, one forged
    webhook per channel, and a reply per channel (two where a failure needs a success beside
    it). Media is hosted where the provider (the sandbox) hosts it, so no URL leaves the host.
    """
    b = PostBuilder(rng, seeded, base_url, sandbox_url, now, [[] for _ in range(PHASES)])
    replies = [
        _whatsapp_reply(whatsapp),
        *_messenger(b),
        *_instagram(b),
        *_telegram(b),
        *_sms(b),
    ]
    thread, mail_reply = _email(b)
    chats = {
        ChannelType.WHATSAPP: len(whatsapp.customers),
        ChannelType.MESSENGER: 3,
        ChannelType.INSTAGRAM: 3,
        ChannelType.TELEGRAM: 3,  # two private chats, and the group as one contact
        ChannelType.SMS: 3,
        ChannelType.EMAIL: 2,
    }
    return ChannelPlan(
        phases=tuple(tuple(p) for p in b.phases),
        replies=(*replies, mail_reply),
        chats=chats,
        email_thread=thread,
    )


def _whatsapp_reply(plan: Plan) -> Reply:
    ana = plan.customers[0]
    return Reply(
        ChannelType.WHATSAPP,
        ana.name,
        answers=plan.brazil_wamids[0],
        recipient=ana.wa_id,
        body="Olá, Ana! Seu pedido saiu para entrega hoje.",
        fault=FaultSpec(provider="whatsapp", mode="rate_limit", retry_after_s=1),
        expect_status="read",
    )


def _messenger(b: PostBuilder) -> list[Reply]:
    kind = ChannelType.MESSENGER
    lucas, grace, diego = (page_scoped_id(b.rng) for _ in range(3))
    first = b.meta(kind, 0, lucas, text="Oi! Comprei pela página e o pedido não chegou.")
    b.meta(kind, 0, grace, text="Hi, I'd like to return a jacket.")
    b.meta(kind, 0, diego, text="Do you ship to Portugal?")
    b.meta(kind, 0, page_scoped_id(b.rng), text="Você ganhou um prêmio! Clique aqui",
           label="forged signature", forged=True)  # fmt: skip
    talk = b.meta(kind, 1, grace, postback=("Talk to an agent", "TALK_TO_AGENT"),
                  label="postback (Talk to an agent button)")  # fmt: skip
    return [
        Reply(kind, "PSID …" + lucas[-4:], first, lucas, "Olá! Pode me passar o número do pedido?",
              fault=FaultSpec(provider="messenger", mode="permanent", code=551),
              expect_status="failed", expect_code="551"),
        Reply(kind, "PSID …" + grace[-4:], talk, grace, "Hi Grace, I'm here. Which jacket?",
              expect_status="read", wave=1),
    ]  # fmt: skip


def _instagram(b: PostBuilder) -> list[Reply]:
    kind = ChannelType.INSTAGRAM
    bia, sam, noah = (page_scoped_id(b.rng) for _ in range(3))
    b.meta(kind, 0, bia, text="Oi! Vocês entregam em Curitiba?")
    story = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18031857439011234&signature=Ab"
    mention = b.meta(kind, 0, sam, attach=("story_mention", story), label="story mention")
    shared = "https://www.instagram.com/p/C7xK2mRsP4q/"
    b.meta(kind, 0, noah, attach=("share", shared), label="shared post")
    b.meta(kind, 0, page_scoped_id(b.rng), text="Promo: seguidores grátis",
           label="forged signature", forged=True)  # fmt: skip
    b.meta(kind, 1, sam, text="Loved the new collection! Is the blue one back?")
    return [
        Reply(kind, "IGSID …" + sam[-4:], mention, sam,
              "Thanks for the mention! The blue one is back on Friday.", expect_status="read"),
    ]  # fmt: skip


def _telegram(b: PostBuilder) -> list[Reply]:
    rng = b.rng
    pedro = telegram_user(rng.randrange(10**8, 10**10), "Pedro", "Santos", "pt")
    olivia = telegram_user(rng.randrange(10**8, 10**10), "Olivia", "Grant", "en")
    bruno = telegram_user(rng.randrange(10**8, 10**10), "Bruno", "Costa", "pt")
    group = group_chat(-rng.randrange(4 * 10**9, 5 * 10**9), "Clientes VIP")
    first = b.telegram(0, private_chat(pedro), pedro, {"text": "Olá! Meu pedido não chegou."})
    b.telegram(0, private_chat(olivia), olivia,
               {"photo": photo_sizes(rng), "caption": "The box arrived like this"},
               label="photo with caption")  # fmt: skip
    b.telegram(0, group, bruno, {"text": "Alguém sabe o prazo de troca?"}, label="group message")
    b.telegram(0, private_chat(bruno), bruno, {"text": "/start"},
               label="forged secret token", forged=True)  # fmt: skip
    b.telegram(1, private_chat(pedro), pedro, {"text": "Alguma novidade?"})
    b.resend(2, first)  # Telegram resends an update it got no 200 for: same update_id
    return [
        Reply(ChannelType.TELEGRAM, "Pedro Santos", first.message_ids[0], str(pedro["id"]),
              "Oi Pedro! Já verifiquei: chega amanhã.",
              fault=FaultSpec(provider="telegram", mode="server_error")),
    ]  # fmt: skip


def _sms(b: PostBuilder) -> list[Reply]:
    emily, jason, megan = (f"+1{area}55501{b.rng.randrange(100):02d}" for area in (206, 303, 404))
    first = b.sms(0, emily, "Hi! My order hasn't arrived yet. Can you check?")
    b.sms(0, jason, "Photo of the damaged box", photo=True, label="MMS with a photo")
    b.sms(0, megan, "Do you have this in blue?")
    b.sms(0, megan, "Win a free phone!", label="forged signature", forged=True)
    stop = b.sms(1, megan, "STOP", opt_out="STOP", label="STOP")
    return [
        Reply(ChannelType.SMS, emily, first, emily, "Hi Emily, it ships today.",
              expect_status="delivered"),
        Reply(ChannelType.SMS, megan + " (sent STOP)", stop, megan, "We have it in blue!",
              expect_status="failed", expect_code="opted_out", reaches_provider=False),
    ]  # fmt: skip


def _email(b: PostBuilder) -> tuple[EmailThread, Reply]:
    ana = ("Ana Lima", "ana.lima@example.com")
    jason = ("Jason Reed", "jason.reed@example.net")
    subject = "Pedido atrasado"
    first = b.mail(0, ana, subject, "Olá! Meu pedido ainda não chegou.\r\n\r\nAna")
    b.mail(0, jason, "Invoice for my order", "Hi, could you send me the invoice?")
    b.mail(0, jason, "Urgent", "Please wire the refund here.", label="forged signature",
           forged=True)  # fmt: skip
    reply = Reply(ChannelType.EMAIL, "Ana Lima", first.message_ids[0], ana[1],
                  "Olá Ana, seu pedido sai hoje.", quote=True)  # fmt: skip
    return EmailThread(ana, subject, first.message_ids[0]), reply


def email_answer(
    plan: ChannelPlan,
    rng: random.Random,
    seeded: Seeded,
    *,
    base_url: str,
    now: int,
    our_message_id: str,
) -> Post:
    """The customer's answer to our reply: In-Reply-To the Message-ID her mailbox got."""
    b = PostBuilder(rng, seeded, base_url, "", now, [[]])
    thread = plan.email_thread
    return b.mail(
        0,
        thread.sender,
        "Re: " + thread.subject,
        "Obrigada, chegou hoje!",
        in_reply_to=our_message_id,
        references=(thread.first_message_id, our_message_id),
        label="answer to our reply (In-Reply-To)",
    )
