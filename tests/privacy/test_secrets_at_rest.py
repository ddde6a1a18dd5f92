"""Channel secrets are encrypted at rest, still work, survive key rotation, never leak."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from api.cli import main
from config import ConfigError, load_settings
from engine.db import system_tx
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.secrets_box import (
    SecretsBox,
    SecretsUnreadableError,
    box_from_settings,
    install_box,
)
from engine.store.channels import get_channel, insert_channel
from engine.store.tenants import insert_tenant
from tests.support.cli import cli_env as set_cli_env
from tests.support.cli import logging_restored

APP_SECRET = "app-secret-that-must-not-be-stored-in-clear"
KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()


@pytest.fixture
def box_old() -> Iterator[SecretsBox]:
    box = SecretsBox([KEY_OLD])
    install_box(box)
    yield box
    install_box(None)


def _channel(db: Engine, name: str = "WA", external_id: str = "1065") -> tuple[int, int]:
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=f"Tenant {name}")
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name=name,
            external_id=external_id,
            config=ChannelConfig(),
            secrets=ChannelSecrets(access_token="tok-123456", app_secret=APP_SECRET),
        )
    return tenant_id, channel_id


def _stored(db: Engine, channel_id: int) -> str:
    with system_tx(db) as conn:
        return str(
            conn.execute(
                text("SELECT secrets::text FROM channels WHERE id = :id"), {"id": channel_id}
            ).scalar_one()
        )


def test_secrets_are_stored_encrypted_and_read_back(clean_db: Engine, box_old: SecretsBox) -> None:
    _, channel_id = _channel(clean_db)
    stored = _stored(clean_db, channel_id)
    assert APP_SECRET not in stored and "tok-123456" not in stored
    assert json.loads(stored)["set"] == ["access_token", "app_secret"]
    with system_tx(clean_db) as conn:
        channel = get_channel(conn, channel_id)
    assert channel is not None and channel.secrets.app_secret == APP_SECRET


def test_a_plaintext_row_from_before_is_still_read(clean_db: Engine, box_old: SecretsBox) -> None:
    _, channel_id = _channel(clean_db)
    with system_tx(clean_db) as conn:
        conn.execute(
            text("UPDATE channels SET secrets = CAST(:s AS jsonb) WHERE id = :id"),
            {"s": json.dumps({"app_secret": "legacy-secret"}), "id": channel_id},
        )
        channel = get_channel(conn, channel_id)
    assert channel is not None and channel.secrets.app_secret == "legacy-secret"


def test_a_wrong_key_is_refused_not_guessed(clean_db: Engine, box_old: SecretsBox) -> None:
    _, channel_id = _channel(clean_db)
    install_box(SecretsBox([KEY_NEW]))
    with system_tx(clean_db) as conn, pytest.raises(SecretsUnreadableError):
        get_channel(conn, channel_id)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    set_cli_env(monkeypatch, database_url=database_url)
    with logging_restored():
        yield


def _rotate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> object:
    monkeypatch.setenv("SECRETS_KEYS", f"{KEY_NEW},{KEY_OLD}")
    main(["--json", "secrets", "rotate", "--batch", "2"])
    return json.loads(capsys.readouterr().out)


def test_rotation_re_encrypts_every_channel_with_the_newest_key(
    clean_db: Engine,
    box_old: SecretsBox,
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = [_channel(clean_db, f"WA{i}", f"10{i}")[1] for i in range(3)]
    with system_tx(clean_db) as conn:  # one channel still holds plaintext from before
        conn.execute(
            text("UPDATE channels SET secrets = CAST(:s AS jsonb) WHERE id = :id"),
            {"s": json.dumps({"app_secret": "legacy-secret"}), "id": ids[0]},
        )

    assert _rotate(monkeypatch, capsys) == {"channels": 3, "rotated": 3}
    assert _rotate(monkeypatch, capsys) == {"channels": 3, "rotated": 0}  # idempotent

    assert "legacy-secret" not in _stored(clean_db, ids[0])
    install_box(SecretsBox([KEY_NEW]))  # the old key may now be dropped
    with system_tx(clean_db) as conn:
        secrets = [get_channel(conn, i).secrets.app_secret for i in ids]  # type: ignore[union-attr]
    assert secrets == ["legacy-secret", APP_SECRET, APP_SECRET]


def test_a_bad_key_is_named_without_echoing_it() -> None:
    bad = "not-a-fernet-key-but-maybe-a-password"
    with pytest.raises(ConfigError) as caught:
        load_settings({"SECRETS_KEYS": f"{KEY_NEW},{bad}"})
    assert "SECRETS_KEYS" in str(caught.value) and "key 2" in str(caught.value)
    assert bad not in str(caught.value) and KEY_NEW not in str(caught.value)


def test_without_keys_a_key_file_is_made_once_and_private(tmp_path: object) -> None:
    settings = load_settings({"FLOWDESK_DATA_DIR": str(tmp_path)})
    sealed = box_from_settings(settings).seal(ChannelSecrets(bot_token="t-1"))
    again = box_from_settings(settings)  # a second process: same key file, same key
    assert again.open(sealed).bot_token == "t-1"
    key_file = settings.FLOWDESK_DATA_DIR / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
