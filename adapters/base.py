"""The contract every channel adapter fulfils, and the secrets it is handed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from engine.events import ChannelSecrets, ChannelType, InboundEvent

__all__ = ["ChannelAdapter", "ChannelSecrets"]


class ChannelAdapter(Protocol):
    """Turns one provider's webhooks into canonical events (and, later, sends for it)."""

    channel_type: ChannelType

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: ChannelSecrets) -> None:
        """Check the provider's signature over the raw bytes.

        Raises SignatureMismatchError when it is missing or wrong. Must run before any parsing.
        """
        ...

    def address_ids(self, body: bytes) -> set[str]:
        """The provider addresses (e.g. WhatsApp phone_number_id) this verified body is for.

        Raises InvalidPayloadError when the body is not JSON of the provider's envelope shape.
        """
        ...

    def dedupe_key(self, body: bytes) -> str:
        """A key equal for every redelivery of the same webhook."""
        ...

    def parse(self, body: bytes, *, address_id: str) -> Sequence[InboundEvent]:
        """Canonical events of `body` addressed to `address_id`, in document order.

        Never raises for a malformed part: that part becomes a MalformedEvent with its reason,
        so one bad entry cannot sink its neighbours. Pure: no I/O.
        """
        ...
