"""What every provider case offers the end-to-end tests, and the shapes they exchange."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from engine.events import ChannelType

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A provider event id no other webhook of this test run uses."""
    return f"{prefix}{time.time_ns()}{next(_ids)}"


@dataclass(frozen=True)
class Webhook:
    """One provider POST: raw bytes and the headers that come with them."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Customer:
    """Who writes in, as the provider names them and as the contact card should show them."""

    external_id: str  # how the provider addresses them (wa_id, PSID, chat id, number, address)
    name: str | None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Expected:
    """The inbound message as an agent sees it in GET /tickets/{id}/messages."""

    type: str
    body: str | None
    media: list[dict[str, Any]]


class ProviderCase:
    """One channel type's provider: its set-up, customer, and webhook builders.

    `url` is the public URL the provider posts to (only Twilio signs it).
    """

    type: ChannelType
    sandbox_provider: str  # how the sandbox names its API calls
    customer: Customer
    subject: str | None = None
    # What the inbox row of `unknown()` ends as: a notice alone is `ignored`.
    unknown_status = "ignored"
    account: str = ""  # our address at the provider: what the sandbox records as `account`
    callback_secret: str = ""  # what the provider signs status callbacks with
    # Statuses the sandbox reports after a send, and the history the message should show.
    delivery_history: tuple[str, ...] = ()

    def setup(self, sandbox_url: str, smtp_port: int) -> dict[str, Any]:
        raise NotImplementedError

    def message(self, url: str, text: str) -> Webhook:
        """A signed text message from the customer."""
        raise NotImplementedError

    def rich_message(self, url: str) -> tuple[Webhook, Expected]:
        """A signed message with media (or a subject, for e-mail) and what it should become."""
        raise NotImplementedError

    def unknown(self, url: str) -> tuple[Webhook, str]:
        """A signed webhook of a shape the engine does not handle, and the reason to expect."""
        raise NotImplementedError

    def forged(self, webhook: Webhook) -> Webhook:
        """The same webhook with a signature (or secret) the channel does not hold."""
        raise NotImplementedError

    def sent(self, request: dict[str, Any]) -> tuple[str | None, str, str]:
        """(account, recipient, text) of a send the sandbox recorded."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.__class__.__name__


def to_json(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()
