"""Typed settings read from environment variables and validated once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from cryptography.fernet import Fernet
from pydantic import AnyHttpUrl, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Segments of letters, digits and `._-`, none starting with a dot (engine.media.check_key).
_S3_PREFIX = r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,199})*/?)?$"
_MEDIA_TYPE = re.compile(r"\*(/\*)?|[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of the engine. Names follow the seed deployment's variables (DESIGN §8)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True)

    PORT: int = Field(default=8080, ge=1, le=65535)
    BACKEND_URL: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    FRONTEND_URL: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:3000")

    DATABASE_URL: str | None = None
    DB_HOST: str | None = None
    DB_PORT: int = Field(default=5432, ge=1, le=65535)
    DB_USER: str = "postgres"
    DB_PASS: str = ""
    DB_NAME: str = "flowdesk"
    DB_POOL_SIZE: int = Field(default=10, ge=1, le=200)

    REDIS_URI: str | None = None
    REDIS_PORT: int = Field(default=6379, ge=1, le=65535)
    REDIS_PASSWORD: str | None = None

    AMQP_URL: str | None = None
    QUEUE_PREFIX: str = Field(default="flowdesk", pattern=r"^[A-Za-z0-9_.-]{1,40}$")

    JWT_SECRET: str = Field(default="", min_length=0)
    JWT_ACCESS_TTL_S: int = Field(default=900, ge=30, le=86_400)
    JWT_REFRESH_TTL_S: int = Field(default=30 * 86_400, ge=300, le=365 * 86_400)
    # Bearer token for /ops/... and the ops console, besides super users; unset: super only.
    OPS_TOKEN: str | None = Field(
        default=None, min_length=24, max_length=256, pattern=r"^\S+$", repr=False
    )
    # Failed sign-ins counted per account (by e-mail, known or not) and per client IP over a
    # fixed window; past either limit login answers 429 until the window ends.
    LOGIN_MAX_FAILURES_PER_ACCOUNT: int = Field(default=10, ge=1, le=10_000)
    LOGIN_MAX_FAILURES_PER_IP: int = Field(default=50, ge=1, le=100_000)
    LOGIN_FAILURE_WINDOW_S: int = Field(default=900, ge=10, le=86_400)
    # REST API requests per minute (webhooks and /healthz are exempt).
    API_RATE_PER_IP_PER_MIN: int = Field(default=600, ge=1, le=1_000_000)
    API_RATE_PER_TENANT_PER_MIN: int = Field(default=3000, ge=1, le=10_000_000)

    FLOWDESK_DATA_DIR: Path = Path(".flowdesk")
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["json", "console"] = "json"
    # Where every process of this host writes its metrics files for the web's /metrics to sum
    # (prometheus-client multiprocess mode). Unset: `flowdesk run` uses <data dir>/metrics.
    PROMETHEUS_MULTIPROC_DIR: Path | None = None

    WORKER_PROCESSES: int = Field(default=1, ge=1, le=64)
    WORKER_THREADS: int = Field(default=4, ge=1, le=256)
    # Provider calls of a batch of sends run on this many threads per worker process.
    SEND_CONCURRENCY: int = Field(default=16, ge=1, le=256)
    MAX_RETRIES: int = Field(default=8, ge=0, le=100)
    MIN_BACKOFF_MS: int = Field(default=500, ge=10, le=3_600_000)
    MAX_BACKOFF_MS: int = Field(default=300_000, ge=100, le=86_400_000)

    INGEST_BATCH_MAX: int = Field(default=200, ge=1, le=5_000)
    INGEST_BATCH_WAIT_MS: int = Field(default=5, ge=0, le=1_000)
    INGEST_MAX_BODY_BYTES: int = Field(default=1_048_576, ge=1_024, le=50_000_000)
    # Unprocessed inbox rows past which webhooks are answered 503 + Retry-After, not stored.
    INGEST_MAX_BACKLOG: int = Field(default=100_000, ge=1, le=100_000_000)
    PIPELINE_BATCH_MAX: int = Field(default=200, ge=1, le=5_000)
    INBOX_SWEEP_AFTER_S: int = Field(default=120, ge=5, le=86_400)
    INBOX_SWEEP_EVERY_S: int = Field(default=30, ge=1, le=3_600)

    # Inbound media: downloaded by its own actor into local files (default) or S3.
    MEDIA_STORAGE: Literal["local", "s3"] = "local"
    MEDIA_DIR: Path | None = None  # unset: <FLOWDESK_DATA_DIR>/media
    S3_BUCKET: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    S3_ENDPOINT_URL: str | None = None  # an S3-compatible service (MinIO, R2…); unset: AWS
    S3_REGION: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,40}$")
    S3_ACCESS_KEY_ID: str | None = None  # unset: boto3's own chain (instance role, ~/.aws)
    S3_SECRET_ACCESS_KEY: str | None = None
    S3_PREFIX: str = Field(default="", pattern=_S3_PREFIX)
    # The whole file is held in memory while it is checked and stored; Meta's cap is 100 MB.
    MEDIA_MAX_BYTES: int = Field(default=16 * 1024 * 1024, ge=1_024, le=100 * 1024 * 1024)
    # Comma-separated `type/subtype` or `type/*`; unset: engine.media.DEFAULT_ALLOWED_TYPES.
    MEDIA_ALLOWED_TYPES: tuple[str, ...] | None = None

    # Channel secrets at rest: comma-separated Fernet keys, newest first (older ones still
    # decrypt until `flowdesk secrets rotate` has re-encrypted every channel). Unset: a key
    # file in FLOWDESK_DATA_DIR (one machine only).
    SECRETS_KEYS: tuple[str, ...] | None = None
    # A webhook body must arrive within this many seconds (slow senders are cut off: 408).
    WEBHOOK_BODY_TIMEOUT_S: float = Field(default=10.0, gt=0, le=300)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() hands over the environment explicitly, so tests can pass their own.
        return (init_settings,)

    @field_validator("DB_HOST")
    @classmethod
    def _empty_host_is_unset(cls, value: str | None) -> str | None:
        # `DB_HOST=` must select the embedded database, as an empty DATABASE_URL does.
        return value or None

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("REDIS_URI")
    @classmethod
    def _check_redis_uri(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("AMQP_URL")
    @classmethod
    def _check_amqp_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator(
        "MEDIA_DIR",
        "S3_BUCKET",
        "S3_REGION",
        "S3_ACCESS_KEY_ID",
        "PROMETHEUS_MULTIPROC_DIR",
        "OPS_TOKEN",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("S3_ENDPOINT_URL")
    @classmethod
    def _check_s3_endpoint(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("S3_SECRET_ACCESS_KEY")
    @classmethod
    def _empty_secret_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("MEDIA_ALLOWED_TYPES", mode="before")
    @classmethod
    def _split_media_types(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
        for entry in entries:
            if not _MEDIA_TYPE.fullmatch(entry):
                raise ValueError(f"{entry[:60]!r} is not a media type like image/png or image/*")
        return entries or None

    @field_validator("SECRETS_KEYS", mode="before")
    @classmethod
    def _split_secrets_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys = tuple(k.strip() for k in value.split(",") if k.strip())
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(
                    f"key {position} is not a Fernet key (32 bytes, url-safe base64)"
                ) from None
        return keys or None

    @model_validator(mode="after")
    def _check_redis_password(self) -> Settings:
        uri = self.REDIS_URI or ""
        if self.REDIS_PASSWORD and "@" in uri.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "REDIS_PASSWORD: REDIS_URI already carries credentials; set only one of them"
            )
        return self

    @model_validator(mode="after")
    def _check_backoff(self) -> Settings:
        if self.MIN_BACKOFF_MS > self.MAX_BACKOFF_MS:
            raise ValueError("MIN_BACKOFF_MS must not exceed MAX_BACKOFF_MS")
        return self

    @model_validator(mode="after")
    def _check_media_storage(self) -> Settings:
        if self.MEDIA_STORAGE == "s3" and not self.S3_BUCKET:
            raise ValueError("S3_BUCKET: required when MEDIA_STORAGE=s3")
        if (self.S3_ACCESS_KEY_ID is None) != (self.S3_SECRET_ACCESS_KEY is None):
            raise ValueError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither")
        return self

    @property
    def database_configured(self) -> bool:
        """True when an external PostgreSQL is configured; False selects the embedded one."""
        return self.DATABASE_URL is not None or self.DB_HOST is not None

    @property
    def redis_configured(self) -> bool:
        """True when an external Redis is configured; False selects the embedded one."""
        return self.REDIS_URI is not None

    def database_url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the configured database."""
        if self.DATABASE_URL:
            rest = self.DATABASE_URL.split("://", 1)[1]
            return f"postgresql+psycopg://{rest}"
        if self.DB_HOST is None:
            raise ConfigError("DB_HOST: no database configured (set DATABASE_URL or DB_HOST)")
        auth = quote(self.DB_USER, safe="")
        if self.DB_PASS:
            auth += ":" + quote(self.DB_PASS, safe="")
        return f"postgresql+psycopg://{auth}@{self.DB_HOST}:{self.DB_PORT}/{self.DB_NAME}"

    def redis_url(self) -> str:
        """Redis URL of the configured server, with REDIS_PASSWORD applied when given."""
        if self.REDIS_URI is None:
            raise ConfigError("REDIS_URI: no Redis configured")
        url = self.REDIS_URI
        if not self.REDIS_PASSWORD:
            return url
        password = quote(self.REDIS_PASSWORD, safe="")
        if url.startswith("unix://"):  # a socket path has no authority: a query parameter
            return f"{url}{'&' if '?' in url else '?'}password={password}"
        scheme, rest = url.split("://", 1)
        return f"{scheme}://:{password}@{rest}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError with one line per bad variable."""
    env = dict(os.environ if environ is None else environ)
    known = {k: v for k, v in env.items() if k in Settings.model_fields}
    try:
        return Settings.model_validate(known)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            if not name:  # a rule across several variables; the message names them
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            lines.append(f"{name}: {err['msg']} (got {_shown(name, known.get(name))})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _shown(name: str, value: str | None) -> str:
    """Echo a bad value back, except for anything that may be a secret."""
    if value is None:
        return "nothing"
    if any(word in name for word in ("PASS", "SECRET", "TOKEN", "KEY", "URL", "URI")):
        return f"a value of {len(value)} characters"
    return repr(value[:60])
