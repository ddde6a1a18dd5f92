"""Twilio channel set-up: the JSON an admin gives `channel create --type sms`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.twilio.setup import ChannelSetup
from engine.events import ChannelConfig, ChannelSecrets

AUTH_TOKEN = "9a8b7c6d5e4f30211f2e3d4c5b6a7988"
VALID: dict[str, Any] = {
    "phone_number": "+14155550100",
    "account_sid": "AC3f8e2b9c4d5a6e7f8091a2b3c4d5e6f7",
    "auth_token": AUTH_TOKEN,
}


def test_valid_config_becomes_a_channel_routed_by_the_number() -> None:
    setup = ChannelSetup.model_validate(
        VALID | {"api_base_url": "http://127.0.0.1:8901/twilio/", "rate_per_s": 1, "burst": 5}
    )
    assert setup.to_channel() == (
        "+14155550100",
        ChannelConfig(
            api_base_url="http://127.0.0.1:8901/twilio",
            account_sid=VALID["account_sid"],
            rate_per_s=1,
            burst=5,
        ),
        ChannelSecrets(auth_token=AUTH_TOKEN),
    )


def test_api_base_url_defaults_to_twilio() -> None:
    _, config, _ = ChannelSetup.model_validate(VALID).to_channel()
    assert config.api_base_url == "https://api.twilio.com"
    assert (config.rate_per_s, config.burst) == (None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone_number", "14155550100"),  # E.164 starts with +
        ("phone_number", "+1 415 555 0100"),
        ("phone_number", "+1415"),
        ("phone_number", "whatsapp:+14155550100"),
        ("account_sid", "AC3F8E2B9C4D5A6E7F8091A2B3C4D5E6F7"),
        ("account_sid", "SK3f8e2b9c4d5a6e7f8091a2b3c4d5e6f7"),
        ("account_sid", "AC123"),
        ("auth_token", "not-a-token"),
        ("auth_token", AUTH_TOKEN + "0"),
        ("api_base_url", "ftp://api.twilio.com"),
        ("api_base_url", "api.twilio.com"),
        ("rate_per_s", 0),
        ("burst", 0),
    ],
)
def test_bad_field_is_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {field: value})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize("field", ["phone_number", "account_sid", "auth_token"])
def test_missing_field_is_named(field: str) -> None:
    config = dict(VALID)
    del config[field]
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(config)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {"messaging_service_sid": "MG123"})
    assert [e["loc"] for e in caught.value.errors()] == [("messaging_service_sid",)]


def test_a_rejected_token_is_not_echoed() -> None:
    secret = "0123456789abcdef0123456789abcdeX"
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {"auth_token": secret})
    assert secret not in str(caught.value)
