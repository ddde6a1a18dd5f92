"""Telegram Update objects into canonical events: messages, edits, button presses, blocks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from adapters.fragments import fragment_text
from adapters.telegram.content import display_name, message_content, service_field
from adapters.telegram.payloads import (
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    Message,
    Update,
    User,
)
from engine.events import (
    ContactChange,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    MessageEdit,
    MessageType,
    ProviderNotice,
    Sender,
)

_FRAGMENT_MAX_CHARS = 2000
_MESSAGE_KEY = re.compile(r"-?[0-9]{1,20}:([0-9]{1,20})")
_GROUP_TYPES = frozenset({"group", "supergroup"})
# What the bot's own membership in a chat says about reaching the chat: a private chat's
# "kicked" is the user blocking the bot; "left"/"kicked" in a group is the bot removed.
_UNREACHABLE = {"kicked": True, "left": True, "member": False, "administrator": False}


def message_key(chat_id: int, message_id: int) -> str:
    """Our provider_message_id: Telegram's message_id is unique only within its chat."""
    return f"{chat_id}:{message_id}"


def chat_and_message_of(key: str) -> tuple[int, int] | None:
    """(chat id, message_id) of a `message_key`, None for any other id."""
    chat, sep, message = key.partition(":")
    if not sep or message_id_of(key) is None:
        return None
    return int(chat), int(message)


def message_id_of(key: str) -> int | None:
    """The Telegram message_id inside a `message_key`, None for any other id (e.g. `cb:`)."""
    match = _MESSAGE_KEY.fullmatch(key)
    return int(match.group(1)) if match else None


def _user_sender(user: User) -> Sender:
    name = display_name(user.first_name, user.last_name) or display_name(user.username)
    return Sender(external_id=str(user.id), name=name)


def _chat_sender(chat: Chat, user: User | None = None) -> Sender:
    """The contact: the chat itself, so a group is one contact with one ticket."""
    if chat.type == "private":
        name = display_name(chat.first_name, chat.last_name) or display_name(chat.username)
        if name is None and user is not None:
            name = _user_sender(user).name
    else:
        name = display_name(chat.title) or display_name(chat.username)
    return Sender(external_id=str(chat.id), name=name)


def _author(chat: Chat, user: User | None, sender_chat: Chat | None = None) -> Sender | None:
    """Who wrote in a group; an anonymous admin or linked channel writes as `sender_chat`."""
    if chat.type not in _GROUP_TYPES:
        return None
    if sender_chat is not None:
        return _chat_sender(sender_chat)
    return _user_sender(user) if user is not None else None


def _parse_message(raw: Any) -> InboundEvent:
    message = Message.model_validate(raw)
    service = service_field(raw)
    if service is not None:
        return ProviderNotice(title=f"service message {service}")
    content = message_content(message, raw)
    chat = message.chat
    replied = message.reply_to_message
    return InboundMessage(
        provider_message_id=message_key(chat.id, message.message_id),
        provider_timestamp=message.date,
        sender=_chat_sender(chat, message.from_),
        type=content.type,
        body=content.body,
        media=content.media,
        location=content.location,
        contacts=content.contacts,
        quoted_provider_message_id=message_key(chat.id, replied.message_id) if replied else None,
        error_title=content.error_title,
        is_group=chat.type in _GROUP_TYPES,
        author=_author(chat, message.from_, message.sender_chat),
    )


def _parse_edit(raw: Any) -> InboundEvent:
    message = Message.model_validate(raw)
    text = message.text if message.text is not None else message.caption
    if text is None and (message.location is not None or message.venue is not None):
        # A live location edits its message every few seconds; that is no change of words.
        return ProviderNotice(title="unsupported edit of a live location")
    return MessageEdit(
        provider_message_id=message_key(message.chat.id, message.message_id),
        provider_timestamp=message.edit_date or message.date,
        sender=_chat_sender(message.chat, message.from_),
        body=text,
    )


def _parse_callback(raw: Any) -> InboundEvent:
    query = CallbackQuery.model_validate(raw)
    if query.message is None:
        return ProviderNotice(title="unsupported callback_query from an inline message")
    if query.data is None:
        return ProviderNotice(title="unsupported callback_query without data")
    pressed = query.message
    chat = pressed.chat
    return InboundMessage(
        provider_message_id=f"cb:{query.id}",
        # Telegram gives a button press no time of its own; the keyboard's message time is
        # the closest stable one, so a re-parse yields the same event.
        provider_timestamp=pressed.edit_date or pressed.date,
        sender=_chat_sender(chat, query.from_),
        type=MessageType.BUTTON,
        body=query.data,
        reply_id=query.data,
        quoted_provider_message_id=message_key(chat.id, pressed.message_id),
        is_group=chat.type in _GROUP_TYPES,
        author=_author(chat, query.from_),
    )


def _parse_member(raw: Any) -> InboundEvent:
    update = ChatMemberUpdated.model_validate(raw)
    status = update.new_chat_member.status
    unreachable = _UNREACHABLE.get(status)
    if unreachable is None:
        return ProviderNotice(title=f"unsupported my_chat_member status {status}")
    return ContactChange(
        sender=_chat_sender(update.chat, update.from_),
        provider_timestamp=update.date,
        unreachable=unreachable,
    )


_PARSERS: dict[str, Callable[[Any], InboundEvent]] = {
    "message": _parse_message,
    "edited_message": _parse_edit,
    "callback_query": _parse_callback,
    "my_chat_member": _parse_member,
}


def _malformed(reason: str, fragment: Any) -> MalformedEvent:
    text = fragment_text(fragment, _FRAGMENT_MAX_CHARS)
    return MalformedEvent(reason=reason, fragment=text)


def _describe(part: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    return part + "".join(f".{p}" for p in first["loc"]) + f": {first['msg']}"


def parse_update(body: bytes) -> Sequence[InboundEvent]:
    """The one event of one Update; never raises (a bad shape is a MalformedEvent)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        fragment = body[:_FRAGMENT_MAX_CHARS].decode("utf-8", "replace")
        return [MalformedEvent(reason="body is not JSON", fragment=fragment)]
    try:
        Update.model_validate(raw)
    except ValidationError as exc:
        return [_malformed(_describe("update", exc), raw)]
    # "At most one of the optional parameters can be present in any given update."
    kind = next((k for k in raw if k != "update_id"), None)
    if kind is None:
        return [_malformed("update: no update kind", raw)]
    parse_part = _PARSERS.get(kind)
    if parse_part is None:
        return [ProviderNotice(title=f"unsupported update {kind}")]
    try:
        return [parse_part(raw[kind])]
    except ValidationError as exc:
        return [_malformed(_describe(kind, exc), raw)]


def dedupe_key(body: bytes) -> str:
    """`update:<update_id>`, the id Telegram repeats on every redelivery; else the body hash."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raw = None
    update_id = raw.get("update_id") if isinstance(raw, dict) else None
    if type(update_id) is int:
        return f"update:{update_id}"
    return "sha256:" + hashlib.sha256(body).hexdigest()
