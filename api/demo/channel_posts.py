"""Webhooks of Messenger, Instagram, Telegram, Twilio and Mailgun, signed the way each
provider signs them (or, for the forged ones, the way an impostor would)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from adapters.sandbox.callbacks import sign_twilio
from api.demo.posting import Post
from api.demo.providers import (
    attachment,
    form_body,
    instagram_mid,
    mailgun_form,
    messaging_envelope,
    messaging_event,
    messenger_mid,
    telegram_update,
    twilio_inbound,
    twilio_sid,
)
from api.demo.seed import Seeded
from api.demo.whatsapp import Part, sign
from engine.events import ChannelType

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


@dataclass
class PostBuilder:
    """Collects signed webhooks into numbered phases; `tick()` is the customers' clock."""

    rng: random.Random
    seeded: Seeded
    base_url: str  # the web's public URL (Twilio signs it)
    sandbox_url: str  # where provider-hosted media lives
    now: int
    phases: list[list[Post]]
    clock: int = 0
    _next_update_id: int = 0
    _chat_messages: dict[int, int] = field(default_factory=dict)

    def tick(self) -> int:
        """Seconds since the epoch, a little later on each call (customers write in turn)."""
        self.clock = max(self.clock, self.now - 900) + self.rng.randint(2, 20)
        return self.clock

    def _add(
        self,
        kind: ChannelType,
        phase: int,
        label: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        *,
        forged: bool,
    ) -> Post:
        post = Post(
            kind,
            label,
            self.base_url + self.seeded.channels[kind].webhook_path,
            body,
            headers,
            message_ids=() if forged else (message_id,),
            expect_status=401 if forged else 200,
        )
        self.phases[phase].append(post)
        return post

    def resend(self, phase: int, post: Post) -> None:
        """The same webhook again, byte for byte, as a provider retries one."""
        self.phases[phase].append(
            Post(post.channel, f"{post.label} (redelivered)", post.url, post.body, post.headers,
                 post.message_ids)
        )  # fmt: skip

    # Messenger and Instagram ------------------------------------------------------------

    def meta(
        self,
        kind: ChannelType,
        phase: int,
        sender: str,
        *,
        text: str | None = None,
        attach: tuple[str, str] | None = None,
        postback: tuple[str, str] | None = None,
        label: str = "text",
        forged: bool = False,
    ) -> str:
        """One messaging event from `sender`: a text, an attachment (kind, URL) or a postback
        (title, payload). Returns its mid."""
        ch = self.seeded.channels[kind]
        mid = instagram_mid(self.rng) if kind is ChannelType.INSTAGRAM else messenger_mid(self.rng)
        when_ms = self.tick() * 1000
        message: Part | None = None
        if postback is None:
            message = {"mid": mid}
            if text is not None:
                message["text"] = text
            if attach is not None:
                message["attachments"] = [attachment(*attach)]
        button: Part | None = None
        if postback is not None:
            button = {"mid": mid, "title": postback[0], "payload": postback[1]}
        event = messaging_event(sender, ch.external_id, when_ms, message=message, postback=button)
        obj = "page" if kind is ChannelType.MESSENGER else "instagram"
        body = messaging_envelope(obj, ch.external_id, [event], time_ms=when_ms + 400)
        signature = sign(body, "forged-" + ch.secret if forged else ch.secret)
        headers = {"Content-Type": _JSON, "X-Hub-Signature-256": signature}
        self._add(kind, phase, label, body, headers, mid, forged=forged)
        return mid

    # Telegram ---------------------------------------------------------------------------

    def telegram(
        self,
        phase: int,
        chat: Part,
        user: Part,
        content: Part,
        *,
        label: str = "text",
        forged: bool = False,
    ) -> Post:
        """One Update with a message in `chat` from `user`; ids count up as Telegram's do."""
        ch = self.seeded.channels[ChannelType.TELEGRAM]
        if not self._next_update_id:
            self._next_update_id = self.rng.randrange(10**8, 9 * 10**8)
        self._next_update_id += 1
        chat_id = int(str(chat["id"]))
        message_id = self._chat_messages.get(chat_id, self.rng.randrange(100, 5000)) + 1
        self._chat_messages[chat_id] = message_id
        body = telegram_update(
            self._next_update_id, chat=chat, sender=user, message_id=message_id,
            date=self.tick(), content=content,
        )  # fmt: skip
        token = "forged-" + ch.secret if forged else ch.secret
        headers = {"Content-Type": _JSON, "X-Telegram-Bot-Api-Secret-Token": token}
        key = f"{chat_id}:{message_id}"
        return self._add(ChannelType.TELEGRAM, phase, label, body, headers, key, forged=forged)

    # Twilio -----------------------------------------------------------------------------

    def sms(
        self,
        phase: int,
        sender: str,
        text: str,
        *,
        photo: bool = False,
        opt_out: str | None = None,
        label: str = "SMS",
        forged: bool = False,
    ) -> str:
        """One incoming SMS (an MMS with a photo hosted by the Twilio twin); its MessageSid."""
        ch = self.seeded.channels[ChannelType.SMS]
        account_sid = self.seeded.twilio_account_sid
        sid = twilio_sid(self.rng, "MM" if photo else "SM")
        media: tuple[tuple[str, str], ...] = ()
        if photo:
            path = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media/ME{sid[2:]}"
            media = (("image/jpeg", self.sandbox_url + path),)
        fields = twilio_inbound(
            sid=sid, account_sid=account_sid, sender=sender, to=ch.external_id, body=text,
            media=media, opt_out=opt_out,
        )  # fmt: skip
        url = self.base_url + ch.webhook_path
        token = ch.secret[::-1] if forged else ch.secret
        headers = {"Content-Type": _FORM, "X-Twilio-Signature": sign_twilio(token, url, fields)}
        self._add(ChannelType.SMS, phase, label, form_body(fields), headers, sid, forged=forged)
        return sid

    # E-mail (Mailgun) -------------------------------------------------------------------

    def mail(
        self,
        phase: int,
        sender: tuple[str, str],
        subject: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        references: tuple[str, ...] = (),
        label: str = "new mail",
        forged: bool = False,
    ) -> Post:
        """One mail forwarded by a Mailgun route; its Message-ID is the post's message id."""
        ch = self.seeded.channels[ChannelType.EMAIL]
        message_id = f"CA{self.rng.randbytes(12).hex()}@mail.{sender[1].rpartition('@')[2]}"
        body = mailgun_form(
            signing_key="key-forged-" + ch.secret if forged else ch.secret,
            rng=self.rng,
            timestamp=self.tick(),
            sender=sender,
            recipient=ch.external_id,
            subject=subject,
            text=text,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
        )
        headers = {"Content-Type": _FORM}
        return self._add(ChannelType.EMAIL, phase, label, body, headers, message_id, forged=forged)
