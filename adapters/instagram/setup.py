"""`flowdesk channel create --type instagram --config JSON`: the set-up an admin gives."""

from __future__ import annotations

from pydantic import Field

from adapters.meta.setup import MetaChannelSetup
from engine.events import ChannelConfig, ChannelSecrets


class ChannelSetup(MetaChannelSetup):
    """An Instagram professional account; webhooks route by its ig_account_id (entry[].id).

    With Facebook Login the default base URL and the linked Page's token apply; an account on
    Instagram Login sets api_base_url to https://graph.instagram.com/v21.0 and its own token.
    """

    ig_account_id: str = Field(pattern=r"^\d{5,20}$")

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        return self._split(self.ig_account_id)
