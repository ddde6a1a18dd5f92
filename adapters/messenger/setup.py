"""`flowdesk channel create --type messenger --config JSON`: the set-up an admin gives."""

from __future__ import annotations

from pydantic import Field

from adapters.meta.setup import MetaChannelSetup
from engine.events import ChannelConfig, ChannelSecrets


class ChannelSetup(MetaChannelSetup):
    """A Facebook Page; webhooks route by its page_id, sends use its Page access token."""

    page_id: str = Field(pattern=r"^\d{5,20}$")

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        return self._split(self.page_id)
