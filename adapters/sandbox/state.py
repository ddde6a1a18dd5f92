"""The sandbox's memory: recorded requests and mail, queued faults, callback targets."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

Provider = Literal["whatsapp", "messenger", "instagram", "telegram", "twilio", "smtp"]
FaultMode = Literal["rate_limit", "server_error", "permanent", "slow", "migrate"]
CallbackProvider = Literal["whatsapp", "messenger", "instagram", "twilio"]
FormBody = dict[str, str | list[str]]

# Start-of-image + JFIF APP0 segment, and end-of-image: enough for sniffers to say image/jpeg.
_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_JPEG_END = b"\xff\xd9"


def utc_now() -> datetime:
    return datetime.now(UTC)


def media_bytes(media_id: str) -> bytes:
    """A small JPEG-shaped payload, the same for the same id, so tests can compare bytes."""
    return _JPEG_HEAD + hashlib.sha256(media_id.encode()).digest() + _JPEG_END


@dataclass(frozen=True)
class RecordedRequest:
    """One provider API call as the sandbox saw it (credentials never kept)."""

    seq: int
    method: str
    path: str
    provider: Provider
    account: str | None
    json: Any
    form: FormBody | None
    status: int
    fault: FaultMode | None
    message_id: str | None
    time: datetime


@dataclass(frozen=True)
class RecordedMail:
    """One message accepted by the SMTP sink."""

    seq: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    headers: dict[str, str]
    time: datetime

    @property
    def subject(self) -> str | None:
        return self.headers.get("Subject")


@dataclass(frozen=True)
class Fault:
    """How the next `count` requests to `provider` fail; count -1 means until cleared."""

    provider: Provider
    mode: FaultMode
    count: int = 1
    retry_after_s: int = 1
    code: int | None = None
    delay_ms: int = 1000
    migrate_to_chat_id: int | None = None


@dataclass(frozen=True)
class CallbackTarget:
    """Where to send delivery-status webhooks for sends from one of our accounts."""

    provider: CallbackProvider
    account: str
    url: str
    secret: str
    statuses: tuple[str, ...]
    delay_ms: int = 50
    error_code: int | None = None
    waba_id: str = "102290129340398"
    display_phone_number: str = "15550000000"


@dataclass(frozen=True)
class SentMessage:
    """What a callback needs to know about a successful send."""

    provider: CallbackProvider
    account: str
    message_id: str
    recipient: str
    account_sid: str | None = None


@dataclass(frozen=True)
class CallbackDelivery:
    """One status webhook the sandbox attempted: the receiver's status or the failure."""

    provider: CallbackProvider
    account: str
    url: str
    message_id: str
    status: str
    http_status: int | None
    error: str | None
    time: datetime


@dataclass
class _FaultSlot:
    fault: Fault
    remaining: int


class SandboxState:
    """Everything the sandbox remembers; safe to share between the server threads and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._requests: list[RecordedRequest] = []
        self._mail: list[RecordedMail] = []
        self._faults: list[_FaultSlot] = []
        self._callbacks: dict[tuple[str, str], CallbackTarget] = {}
        self._deliveries: list[CallbackDelivery] = []
        self._chat_counters: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._telegram_deleted: set[tuple[str, str, int]] = set()
        self._instagram_accounts: set[str] = set()

    # -- recorded requests -------------------------------------------------------------
    def record_request(self, request: RecordedRequest) -> RecordedRequest:
        with self._lock:
            stored = replace(request, seq=next(self._seq))
            self._requests.append(stored)
            return stored

    def requests(
        self, *, provider: str | None = None, account: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self._requests
                if (provider is None or r.provider == provider)
                and (account is None or r.account == account)
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- mail ----------------------------------------------------------------------------
    def record_mail(self, mail: RecordedMail) -> RecordedMail:
        with self._lock:
            stored = replace(mail, seq=next(self._seq))
            self._mail.append(stored)
            return stored

    def mail(self) -> list[RecordedMail]:
        with self._lock:
            return list(self._mail)

    def clear_mail(self) -> None:
        with self._lock:
            self._mail.clear()

    # -- faults --------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(_FaultSlot(fault, fault.count))

    def faults(self) -> list[Fault]:
        """Queued faults, each with `count` set to what is left of it."""
        with self._lock:
            return [replace(s.fault, count=s.remaining) for s in self._faults]

    def take_fault(self, provider: Provider) -> Fault | None:
        """The fault the next request to `provider` suffers, if any, consuming one use.

        Faults for one provider apply in the order they were added (FIFO), so a test can
        script "429, then 500, then success".
        """
        with self._lock:
            for slot in self._faults:
                if slot.fault.provider != provider:
                    continue
                if slot.remaining > 0:
                    slot.remaining -= 1
                    if slot.remaining == 0:
                        self._faults.remove(slot)
                return slot.fault
            return None

    def clear_faults(self, provider: str | None = None) -> None:
        with self._lock:
            self._faults = [
                s for s in self._faults if provider is not None and s.fault.provider != provider
            ]

    # -- callbacks -----------------------------------------------------------------------
    def register_callback(self, target: CallbackTarget) -> None:
        with self._lock:
            self._callbacks[(target.provider, target.account)] = target
            if target.provider == "instagram":
                self._instagram_accounts.add(target.account)

    def callback_for(self, provider: str, account: str) -> CallbackTarget | None:
        with self._lock:
            return self._callbacks.get((provider, account))

    def callbacks(self) -> list[CallbackTarget]:
        with self._lock:
            return list(self._callbacks.values())

    def clear_callbacks(self) -> None:
        with self._lock:
            self._callbacks.clear()
            self._instagram_accounts.clear()

    def record_delivery(self, delivery: CallbackDelivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def deliveries(self) -> list[CallbackDelivery]:
        with self._lock:
            return list(self._deliveries)

    # -- provider bookkeeping ------------------------------------------------------------
    def is_instagram_account(self, account: str) -> bool:
        with self._lock:
            return account in self._instagram_accounts

    def next_telegram_message_id(self, bot_id: str, chat_id: str) -> int:
        """Telegram numbers messages per chat, starting at 1."""
        with self._lock:
            self._chat_counters[(bot_id, chat_id)] += 1
            return self._chat_counters[(bot_id, chat_id)]

    def telegram_message_exists(self, bot_id: str, chat_id: str, message_id: int) -> bool:
        """Whether the bot sent `message_id` in the chat and has not deleted it."""
        with self._lock:
            sent = 1 <= message_id <= self._chat_counters.get((bot_id, chat_id), 0)
            return sent and (bot_id, chat_id, message_id) not in self._telegram_deleted

    def delete_telegram_message(self, bot_id: str, chat_id: str, message_id: int) -> None:
        with self._lock:
            self._telegram_deleted.add((bot_id, chat_id, message_id))

    def reset(self) -> None:
        """Forget everything: requests, mail, faults, callbacks, counters."""
        with self._lock:
            self._requests.clear()
            self._mail.clear()
            self._faults.clear()
            self._callbacks.clear()
            self._deliveries.clear()
            self._chat_counters.clear()
            self._telegram_deleted.clear()
            self._instagram_accounts.clear()
