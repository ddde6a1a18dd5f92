"""E-mail channel set-up: the admin's JSON validated into external_id, config and secrets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.email.setup import ChannelSetup
from engine.events import ChannelConfig, ChannelSecrets

SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
WEBHOOK_SECRET = "sg-parse-5Kq9xW2mZr7LtBv"
MAILGUN: dict[str, Any] = {
    "address": "support@help.acme.test",
    "signing_key": SIGNING_KEY,
    "smtp_username": "postmaster@help.acme.test",
    "smtp_password": "smtp-pw-9f8e7d",
}
SENDGRID: dict[str, Any] = {
    "address": "support@help.acme.test",
    "inbound_provider": "sendgrid",
    "webhook_secret": WEBHOOK_SECRET,
    "smtp_username": "apikey",
    "smtp_password": "SG.abc.def",
}


def test_mailgun_channel_is_routed_by_its_address() -> None:
    external_id, config, secrets = ChannelSetup.model_validate(MAILGUN).to_channel()
    assert external_id == "support@help.acme.test"
    assert config == ChannelConfig(
        from_address="support@help.acme.test",
        inbound_provider="mailgun",
        smtp_host="smtp.mailgun.org",
        smtp_port=587,
        smtp_username="postmaster@help.acme.test",
        smtp_starttls=True,
    )
    assert secrets == ChannelSecrets(signing_key=SIGNING_KEY, smtp_password="smtp-pw-9f8e7d")


def test_sendgrid_channel_defaults_to_sendgrid_smtp() -> None:
    _, config, secrets = ChannelSetup.model_validate(SENDGRID).to_channel()
    assert (config.inbound_provider, config.smtp_host) == ("sendgrid", "smtp.sendgrid.net")
    assert secrets == ChannelSecrets(webhook_secret=WEBHOOK_SECRET, smtp_password="SG.abc.def")


def test_sandbox_smtp_and_own_from_address_are_kept() -> None:
    setup = ChannelSetup.model_validate(
        {"address": "Support@Help.Acme.Test", "signing_key": SIGNING_KEY}
        | {"smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_starttls": False}
        | {"from_address": "atendimento@acme.test", "rate_per_s": 5, "burst": 10}
    )
    external_id, config, secrets = setup.to_channel()
    assert external_id == "support@help.acme.test"
    assert (config.smtp_host, config.smtp_port, config.smtp_starttls) == ("127.0.0.1", 2525, False)
    assert config.from_address == "atendimento@acme.test"
    assert (config.smtp_username, secrets.smtp_password) == (None, None)
    assert (config.rate_per_s, config.burst) == (5, 10)


@pytest.mark.parametrize(
    ("base", "field", "value"),
    [
        (MAILGUN, "address", "support"),
        (MAILGUN, "address", "Suporte <support@help.acme.test>"),
        (MAILGUN, "address", "a@x.test, b@x.test"),
        (MAILGUN, "from_address", "not-an-address"),
        (MAILGUN, "inbound_provider", "postmark"),
        (MAILGUN, "signing_key", None),
        (MAILGUN, "signing_key", "short"),
        (MAILGUN, "signing_key", "has a space in it"),
        (MAILGUN, "webhook_secret", WEBHOOK_SECRET),
        (SENDGRID, "webhook_secret", None),
        (SENDGRID, "webhook_secret", "too-short"),
        (SENDGRID, "webhook_secret", "has/slash@and:colon-0123"),
        (SENDGRID, "signing_key", SIGNING_KEY),
        (MAILGUN, "smtp_host", "smtp://smtp.mailgun.org"),
        (MAILGUN, "smtp_host", "smtp.mailgun.org:587"),
        (MAILGUN, "smtp_port", 0),
        (MAILGUN, "smtp_port", 65536),
        (MAILGUN, "smtp_password", None),
        (MAILGUN, "smtp_username", ""),
        (MAILGUN, "rate_per_s", 0),
        (MAILGUN, "burst", 0),
    ],
)
def test_bad_field_is_named(base: dict[str, Any], field: str, value: Any) -> None:
    config = {k: v for k, v in (base | {field: value}).items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(config)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_missing_address_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({"signing_key": SIGNING_KEY})
    assert [e["loc"] for e in caught.value.errors()] == [("address",)]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(MAILGUN | {"api_key": "x"})
    assert caught.value.errors()[0]["loc"] == ("api_key",)


def test_secrets_never_show_in_errors_or_repr() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(SENDGRID | {"webhook_secret": "bad secret with spaces!!"})
    assert "bad secret" not in str(caught.value)
    setup = ChannelSetup.model_validate(MAILGUN)
    assert SIGNING_KEY not in repr(setup) and "smtp-pw-9f8e7d" not in repr(setup)


def test_setup_is_frozen() -> None:
    setup = ChannelSetup.model_validate(MAILGUN)
    with pytest.raises(ValidationError):
        setup.smtp_port = 25  # type: ignore[misc]
