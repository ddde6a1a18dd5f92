"""Webhook bodies of Messenger, Instagram, Telegram, Twilio and Mailgun, shaped as documented."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from email.utils import formatdate
from urllib.parse import urlencode

from api.demo.whatsapp import Part

# Instagram message ids are base64 of "ig_item:1:IGMessageID:<account>:<thread>…".
_IG_MID_PREFIX = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj"


# Messenger and Instagram (Messenger Platform webhooks) ------------------------------------


def page_scoped_id(rng: random.Random) -> str:
    """A PSID / IGSID: the id a Page or an Instagram account knows one person by."""
    return str(rng.randrange(10**15, 10**16))


def messenger_mid(rng: random.Random) -> str:
    return "m_" + base64.urlsafe_b64encode(rng.randbytes(60)).decode().rstrip("=")


def instagram_mid(rng: random.Random) -> str:
    return _IG_MID_PREFIX + base64.b64encode(rng.randbytes(90)).decode().rstrip("=")


def messaging_event(
    sender: str,
    account: str,
    timestamp_ms: int,
    *,
    message: Part | None = None,
    postback: Part | None = None,
) -> Part:
    """One `messaging[]` item: a message or a postback from `sender` to our page/account."""
    event: Part = {
        "sender": {"id": sender},
        "recipient": {"id": account},
        "timestamp": timestamp_ms,
    }
    if message is not None:
        event["message"] = message
    if postback is not None:
        event["postback"] = postback
    return event


def messaging_envelope(obj: str, account: str, events: Sequence[Part], *, time_ms: int) -> bytes:
    """A whole webhook body; `obj` is "page" (Messenger) or "instagram"."""
    body = {"object": obj, "entry": [{"id": account, "time": time_ms, "messaging": list(events)}]}
    return json.dumps(body, ensure_ascii=False).encode()


def attachment(kind: str, url: str) -> Part:
    return {"type": kind, "payload": {"url": url}}


# Telegram Bot API ------------------------------------------------------------------------


def telegram_user(user_id: int, first_name: str, last_name: str, lang: str) -> Part:
    username = f"{first_name}{last_name}".lower().replace(" ", "")
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "last_name": last_name,
        "username": username,
        "language_code": "pt-br" if lang == "pt" else "en",
    }


def private_chat(user: Part) -> Part:
    return {
        "id": user["id"],
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "username": user["username"],
        "type": "private",
    }


def group_chat(chat_id: int, title: str) -> Part:
    return {"id": chat_id, "title": title, "type": "group", "all_members_are_administrators": True}


def photo_sizes(rng: random.Random) -> list[Part]:
    """A photo as Telegram sends it: one PhotoSize per resolution, smallest first."""
    key = base64.urlsafe_b64encode(rng.randbytes(12)).decode()
    sizes = ((90, 67, 1523), (320, 240, 21840), (1280, 960, 98311))
    return [
        {
            "file_id": f"AgACAgEAAxkBAAIB{key}{w}",
            "file_unique_id": f"AQAD{key[:8]}{w}",
            "file_size": size,
            "width": w,
            "height": h,
        }
        for w, h, size in sizes
    ]


def telegram_update(
    update_id: int, *, chat: Part, sender: Part, message_id: int, date: int, content: Part
) -> bytes:
    """An Update carrying one `message`; `content` holds text, or photo and caption."""
    message: Part = {"message_id": message_id, "from": sender, "chat": chat, "date": date}
    body = {"update_id": update_id, "message": message | content}
    return json.dumps(body, ensure_ascii=False).encode()


# Twilio Programmable Messaging ---------------------------------------------------------


def twilio_sid(rng: random.Random, prefix: str) -> str:
    return prefix + rng.randbytes(16).hex()


def twilio_inbound(
    *,
    sid: str,
    account_sid: str,
    sender: str,
    to: str,
    body: str,
    media: Sequence[tuple[str, str]] = (),
    opt_out: str | None = None,
) -> list[tuple[str, str]]:
    """The form fields of an incoming-message webhook; `media` is (content type, URL) pairs."""
    fields = [
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", str(len(media))),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", account_sid),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]
    for index, (content_type, url) in enumerate(media):
        fields += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
    if opt_out is not None:
        fields.append(("OptOutType", opt_out))
    return fields


def form_body(fields: Sequence[tuple[str, str]]) -> bytes:
    return urlencode(list(fields)).encode()


# Mailgun routes (forward to URL) --------------------------------------------------------


def sign_mailgun(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's `signature` field: hex HMAC-SHA256 of timestamp + token with the signing key."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_form(
    *,
    signing_key: str,
    rng: random.Random,
    timestamp: int,
    sender: tuple[str, str],
    recipient: str,
    subject: str,
    text: str,
    message_id: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> bytes:
    """A route's forward() POST of one mail; `sender` is (display name, address)."""
    name, address = sender
    headers = [
        ["From", f"{name} <{address}>"],
        ["Date", formatdate(timestamp, usegmt=True)],
        ["Message-Id", f"<{message_id}>"],
        ["Subject", subject],
        ["To", recipient],
    ]
    if in_reply_to is not None:
        headers.append(["In-Reply-To", f"<{in_reply_to}>"])
    if references:
        headers.append(["References", " ".join(f"<{r}>" for r in references)])
    token = rng.randbytes(25).hex()
    fields = [
        *((h, v) for h, v in headers),
        ("Mime-Version", "1.0"),
        ("body-plain", text + "\r\n"),
        ("from", f"{name} <{address}>"),
        ("message-headers", json.dumps(headers)),
        ("recipient", recipient),
        ("sender", address),
        ("stripped-text", text),
        ("subject", subject),
        ("timestamp", str(timestamp)),
        ("token", token),
        ("signature", sign_mailgun(signing_key, str(timestamp), token)),
    ]
    return urlencode(fields).encode()
