"""What an admin gives `flowdesk channel create --type sms --config JSON` for a Twilio number."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.twilio.outbound import DEFAULT_API_BASE_URL
from engine.events import ChannelConfig, ChannelSecrets
from engine.phone import normalize_phone


class ChannelSetup(BaseModel):
    """A Twilio phone number, its account and credentials; the number routes its webhooks."""

    # A rejected auth token must not be echoed back into a terminal or a log.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    phone_number: str = Field(description="our Twilio number in E.164, e.g. +14155550100")
    account_sid: str = Field(pattern=r"^AC[0-9a-f]{32}$")
    auth_token: str = Field(pattern=r"^[0-9a-f]{32}$")
    api_base_url: str = DEFAULT_API_BASE_URL
    rate_per_s: float | None = Field(default=None, gt=0, le=10_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.startswith("+") or normalize_phone(value) != value:
            raise ValueError("must be a phone number in E.164 form, e.g. +14155550100")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        """(external_id = the number webhooks are routed by, config, secrets)."""
        config = ChannelConfig(
            api_base_url=self.api_base_url,
            account_sid=self.account_sid,
            rate_per_s=self.rate_per_s,
            burst=self.burst,
        )
        return self.phone_number, config, ChannelSecrets(auth_token=self.auth_token)
