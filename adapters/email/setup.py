"""What an admin gives `flowdesk channel create --type email --config JSON`, validated."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.email.mail import addresses, bare
from engine.events import ChannelConfig, ChannelSecrets

# Each provider's own SMTP relay; point smtp_host at the sandbox for tests and the demo.
DEFAULT_SMTP_HOSTS = {"mailgun": "smtp.mailgun.org", "sendgrid": "smtp.sendgrid.net"}
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")
_KEY_SECRET = re.compile(r"[!-~]{8,256}")  # printable ASCII, no spaces
# Sits in the Inbound Parse URL as the basic-auth password: URL-safe characters only.
_URL_SECRET = re.compile(r"[A-Za-z0-9._~-]{16,256}")


class ChannelSetup(BaseModel):
    """One inbound address as a channel; its external_id is that address, lower-cased."""

    # hide_input_in_errors: a rejected secret must not be echoed into logs or terminals.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    address: str
    inbound_provider: Literal["mailgun", "sendgrid"] = "mailgun"
    signing_key: str | None = Field(default=None, repr=False, validate_default=True)
    webhook_secret: str | None = Field(default=None, repr=False, validate_default=True)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = Field(default=None, min_length=1, max_length=256)
    smtp_password: str | None = Field(default=None, repr=False, validate_default=True)
    smtp_starttls: bool = True
    from_address: str | None = None
    rate_per_s: float | None = Field(default=None, gt=0, le=10_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("address", "from_address")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = addresses(value)
        if len(found) != 1 or found[0].display_name or bare(found[0]) != value.strip().lower():
            raise ValueError("must be one bare e-mail address, like support@example.com")
        return bare(found[0])

    @field_validator("signing_key")
    @classmethod
    def _mailgun_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _provider_secret(value, info, provider="mailgun", pattern=_KEY_SECRET)

    @field_validator("webhook_secret")
    @classmethod
    def _sendgrid_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _provider_secret(value, info, provider="sendgrid", pattern=_URL_SECRET)

    @field_validator("smtp_host")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.fullmatch(value):
            raise ValueError("must be a host name or IP address, without scheme or port")
        return value

    @field_validator("smtp_password")
    @classmethod
    def _password_with_username(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("smtp_username") and not value:
            raise ValueError("is required when smtp_username is set")
        if value is not None and not 1 <= len(value) <= 512:
            raise ValueError("must be 1 to 512 characters")
        return value

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]:
        config = ChannelConfig(
            from_address=self.from_address or self.address,
            inbound_provider=self.inbound_provider,
            smtp_host=self.smtp_host or DEFAULT_SMTP_HOSTS[self.inbound_provider],
            smtp_port=self.smtp_port,
            smtp_username=self.smtp_username,
            smtp_starttls=self.smtp_starttls,
            rate_per_s=self.rate_per_s,
            burst=self.burst,
        )
        secrets = ChannelSecrets(
            signing_key=self.signing_key,
            webhook_secret=self.webhook_secret,
            smtp_password=self.smtp_password,
        )
        return self.address, config, secrets


def _provider_secret(
    value: str | None, info: ValidationInfo, *, provider: str, pattern: re.Pattern[str]
) -> str | None:
    # The adapter picks the inbound check by which secret is set, so exactly one may be.
    chosen = info.data.get("inbound_provider")
    if chosen is None:  # inbound_provider itself failed; its own error says so
        return value
    if chosen != provider:
        if value is not None:
            raise ValueError(f"is only for inbound_provider {provider}")
        return None
    if value is None:
        raise ValueError(f"is required when inbound_provider is {provider}")
    if not pattern.fullmatch(value):
        raise ValueError(f"must match {pattern.pattern}")
    return value
