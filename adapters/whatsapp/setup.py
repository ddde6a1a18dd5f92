"""`flowdesk channel create --type whatsapp --config JSON`: the set-up an admin gives."""

from __future__ import annotations

from pydantic import Field

from adapters.meta.setup import MetaChannelSetup
from engine.events import ChannelConfig, ChannelSecrets


class ChannelSetup(MetaChannelSetup):
    """A WhatsApp Cloud API number; webhooks route by its phone_number_id."""

    phone_number_id: str = Field(pattern=r"^\d{5,20}$")

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        return self._split(self.phone_number_id)
