"""Telegram channel set-up: the admin's JSON validated into external_id, config and secrets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.telegram.setup import ChannelSetup
from engine.events import ChannelConfig, ChannelSecrets

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
VALID: dict[str, Any] = {"bot_token": TOKEN, "webhook_secret": "s3cr3t_Token-for-the-webhook"}


def test_valid_config_becomes_a_channel_routed_by_bot_id() -> None:
    external_id, config, secrets = ChannelSetup.model_validate(VALID).to_channel()
    assert external_id == "7012345678"
    assert config == ChannelConfig(api_base_url="https://api.telegram.org")
    assert secrets == ChannelSecrets(bot_token=TOKEN, webhook_secret=VALID["webhook_secret"])


def test_sandbox_base_url_and_rate_limits_are_kept() -> None:
    setup = ChannelSetup.model_validate(
        VALID | {"api_base_url": "http://127.0.0.1:8081/telegram/", "rate_per_s": 30, "burst": 30}
    )
    _, config, _ = setup.to_channel()
    assert config.api_base_url == "http://127.0.0.1:8081/telegram"
    assert (config.rate_per_s, config.burst) == (30, 30)


def test_longest_webhook_secret_telegram_allows_is_accepted() -> None:
    ChannelSetup.model_validate(VALID | {"webhook_secret": "a" * 256})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bot_token", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        ("bot_token", "7012345678:short"),
        ("bot_token", "bot7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        ("bot_token", "7012345678:AAHdqTcvCH1vGWJxf/eofSAs0K5PALDsaw"),
        ("webhook_secret", ""),
        ("webhook_secret", "a" * 257),
        ("webhook_secret", "has space"),
        ("webhook_secret", "sêcret"),
        ("api_base_url", "ftp://api.telegram.org"),
        ("api_base_url", "api.telegram.org"),
        ("api_base_url", "https://api.telegram.org/?x=1"),
        ("rate_per_s", 0),
        ("burst", 0),
    ],
)
def test_bad_field_is_named(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {field: value})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize("field", ["bot_token", "webhook_secret"])
def test_missing_secret_is_named(field: str) -> None:
    config = dict(VALID)
    del config[field]
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(config)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {"phone_number_id": "1065"})
    assert caught.value.errors()[0]["loc"] == ("phone_number_id",)


def test_secrets_never_show_in_errors_or_repr() -> None:
    bad_token = "7012345678:AAHdqTcvCH1vGWJxf/eofSAs0K5PALDsaw"
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(VALID | {"bot_token": bad_token})
    assert bad_token not in str(caught.value)
    setup = ChannelSetup.model_validate(VALID)
    assert TOKEN not in repr(setup) and VALID["webhook_secret"] not in repr(setup)


def test_setup_is_frozen() -> None:
    setup = ChannelSetup.model_validate(VALID)
    with pytest.raises(ValidationError):
        setup.api_base_url = "http://elsewhere"  # type: ignore[misc]
