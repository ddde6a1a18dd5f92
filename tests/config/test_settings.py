"""Settings: defaults, one clear line per bad variable, secrets never echoed, URLs composed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import redis.connection

from config import ConfigError, load_settings
from engine.runtime import jwt_secret


def test_empty_environment_gives_working_defaults() -> None:
    settings = load_settings({})
    assert settings.PORT == 8080
    assert settings.QUEUE_PREFIX == "flowdesk"
    assert settings.WORKER_THREADS >= 1
    assert settings.LOG_LEVEL == "INFO"
    assert settings.AMQP_URL is None
    # Nothing configured selects the embedded services.
    assert not settings.database_configured
    assert not settings.redis_configured


def test_empty_values_mean_unset() -> None:
    # Compose files and .env templates often carry `DB_HOST=`; that must not select a server.
    settings = load_settings(
        {"DATABASE_URL": "", "DB_HOST": "", "REDIS_URI": "", "AMQP_URL": "", "JWT_SECRET": ""}
    )
    assert not settings.database_configured
    assert not settings.redis_configured
    assert settings.AMQP_URL is None


def test_unknown_variables_are_ignored() -> None:
    settings = load_settings({"HOME": "/root", "PATH": "/bin", "PORT": "9000"})
    assert settings.PORT == 9000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URI", "http://x"),
        ("AMQP_URL", "redis://x"),
        ("QUEUE_PREFIX", "a b"),
        ("QUEUE_PREFIX", "x" * 41),
        ("WORKER_THREADS", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("BACKEND_URL", "not-a-url"),
        ("DB_PORT", "-1"),
        ("MAX_RETRIES", "many"),
    ],
)
def test_bad_value_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 1
    assert lines[0].strip().startswith(f"{name}:")


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {"PORT": "abc", "LOG_LEVEL": "LOUD", "REDIS_URI": "http://x", "WORKER_THREADS": "0"}
        )
    named = {line.strip().split(":", 1)[0] for line in str(info.value).splitlines()[1:]}
    assert named == {"PORT", "LOG_LEVEL", "REDIS_URI", "WORKER_THREADS"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://user:hunter2@h/db"),
        ("REDIS_URI", "http://:hunter2@cache:6379"),
        ("AMQP_URL", "redis://guest:hunter2@rabbit:5672/"),
        ("BACKEND_URL", "hunter2 is not a url"),
    ],
)
def test_secrets_in_bad_values_are_not_echoed(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    message = str(info.value)
    assert name in message
    assert "hunter2" not in message


def test_harmless_bad_values_are_echoed_to_help_the_operator() -> None:
    with pytest.raises(ConfigError, match="'LOUD'"):
        load_settings({"LOG_LEVEL": "LOUD"})


def test_database_url_is_composed_from_parts_with_the_password_escaped() -> None:
    settings = load_settings(
        {
            "DB_HOST": "db.internal",
            "DB_PORT": "6543",
            "DB_USER": "flow desk",
            "DB_PASS": "p@ss:w/rd?#%",
            "DB_NAME": "fd_prod",
        }
    )
    assert settings.database_configured
    url = settings.database_url()
    assert url.startswith("postgresql+psycopg://")
    parts = urlsplit(url)
    assert parts.hostname == "db.internal"
    assert parts.port == 6543
    assert parts.path == "/fd_prod"
    assert unquote(parts.username or "") == "flow desk"
    assert unquote(parts.password or "") == "p@ss:w/rd?#%"


def test_database_url_without_password_has_no_colon() -> None:
    url = load_settings({"DB_HOST": "db", "DB_USER": "app"}).database_url()
    assert url == "postgresql+psycopg://app@db:5432/flowdesk"


def test_database_url_wins_and_gets_the_psycopg_driver() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgres://u:p@h:5433/db", "DB_HOST": "ignored", "DB_NAME": "nope"}
    )
    assert settings.database_url() == "postgresql+psycopg://u:p@h:5433/db"


def test_no_database_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DB_HOST"):
        load_settings({}).database_url()


def test_redis_password_is_applied_to_redis_uri_escaped() -> None:
    settings = load_settings({"REDIS_URI": "redis://cache:6379/2", "REDIS_PASSWORD": "s3cr@t/"})
    parts = urlsplit(settings.redis_url())
    assert (parts.hostname, parts.port, parts.path) == ("cache", 6379, "/2")
    assert unquote(parts.password or "") == "s3cr@t/"


def test_a_password_in_both_places_is_refused_not_silently_dropped() -> None:
    with pytest.raises(ConfigError, match="REDIS_PASSWORD: REDIS_URI already carries"):
        load_settings({"REDIS_URI": "redis://:own@cache:6379/0", "REDIS_PASSWORD": "other"})
    assert load_settings({"REDIS_URI": "redis://:own@cache:6379/0"}).redis_url() == (
        "redis://:own@cache:6379/0"
    )


def test_redis_password_reaches_a_unix_socket_as_a_query_parameter() -> None:
    settings = load_settings({"REDIS_URI": "unix:///run/redis.sock?db=2", "REDIS_PASSWORD": "p&w"})
    assert settings.redis_url() == "unix:///run/redis.sock?db=2&password=p%26w"
    kwargs = redis.connection.parse_url(settings.redis_url())
    assert (kwargs["password"], kwargs["path"], kwargs["db"]) == ("p&w", "/run/redis.sock", 2)


@pytest.mark.parametrize("secret", ["short", "x" * 31, "ção-" * 5])
def test_short_jwt_secret_is_rejected(secret: str) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET: must be at least 32 bytes"):
        jwt_secret(load_settings({"JWT_SECRET": secret}))


@pytest.mark.parametrize(
    "env",
    [{"DATABASE_URL": "postgresql://u:p@h/db"}, {"DB_HOST": "db.internal"}],
)
def test_jwt_secret_is_required_with_an_external_database(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        jwt_secret(load_settings(env))


def test_configured_jwt_secret_is_used_as_is() -> None:
    secret = "a-long-enough-secret-value-of-32+"
    env = {"DATABASE_URL": "postgresql://u:p@h/db", "JWT_SECRET": secret}
    assert jwt_secret(load_settings(env)) == secret


def test_embedded_default_invents_one_secret_and_keeps_it(tmp_path: Path) -> None:
    settings = load_settings({"FLOWDESK_DATA_DIR": str(tmp_path / "data")})
    first = jwt_secret(settings)
    assert len(first) >= 32
    assert jwt_secret(settings) == first
    assert (tmp_path / "data" / "jwt.secret").stat().st_mode & 0o077 == 0
