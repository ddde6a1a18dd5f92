"""What `channel create --config` accepts for any Meta channel: credentials and the API base URL."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from adapters.meta.graph import GRAPH_BASE_URL
from engine.events import ChannelConfig, ChannelSecrets


class MetaChannelSetup(BaseModel):
    """Fields common to WhatsApp, Messenger and Instagram; subclasses add the account id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # repr=False: an admin's JSON may end up in a traceback; its secrets must not.
    access_token: str = Field(min_length=1, repr=False)
    app_secret: str = Field(min_length=8, repr=False)
    verify_token: str = Field(min_length=8, repr=False)
    api_base_url: str = Field(default=GRAPH_BASE_URL, pattern=r"^https?://[^\s/]+\S*$")

    def _split(self, external_id: str) -> tuple[str, ChannelConfig, ChannelSecrets]:
        config = ChannelConfig(api_base_url=self.api_base_url.rstrip("/"))
        secrets = ChannelSecrets(
            access_token=self.access_token,
            app_secret=self.app_secret,
            verify_token=self.verify_token,
        )
        return external_id, config, secrets
