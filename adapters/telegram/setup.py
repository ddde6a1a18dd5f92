"""What an admin gives `flowdesk channel create --type telegram --config JSON`, validated."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.telegram.outbound import DEFAULT_API_BASE_URL
from engine.events import ChannelConfig, ChannelSecrets


class ChannelSetup(BaseModel):
    """A Telegram bot as a channel; its external_id is the bot's numeric id."""

    # hide_input_in_errors: a rejected token must not be echoed into logs or terminals.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # BotFather's format: the bot id, a colon, then a ~35-character secret.
    bot_token: str = Field(pattern=r"^[0-9]{1,20}:[A-Za-z0-9_-]{30,100}$", repr=False)
    # Telegram's own rule for setWebhook's secret_token.
    webhook_secret: str = Field(pattern=r"^[A-Za-z0-9_-]{1,256}$", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    rate_per_s: float | None = Field(default=None, gt=0, le=10_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        bot_id = self.bot_token.partition(":")[0]
        config = ChannelConfig(
            api_base_url=self.api_base_url, rate_per_s=self.rate_per_s, burst=self.burst
        )
        secrets = ChannelSecrets(bot_token=self.bot_token, webhook_secret=self.webhook_secret)
        return bot_id, config, secrets
