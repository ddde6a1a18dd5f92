"""Where this process's database and Redis are, and the secrets derived from settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from config import ConfigError, Settings
from engine.embedded import EmbeddedServices, resolve_services


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str
    jwt_secret: str
    services: EmbeddedServices | None

    def close(self) -> None:
        """Stop embedded services this process started (others' are left running)."""
        if self.services is not None:
            self.services.stop()
            self.services = None


def resolve_runtime(settings: Settings) -> Runtime:
    """Use the configured services, or the embedded ones (started here if not running)."""
    database_url, redis_url, services = resolve_services(settings)
    return Runtime(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=jwt_secret(settings),
        services=services,
    )


MIN_JWT_SECRET_BYTES = 32


def jwt_secret(settings: Settings) -> str:
    """JWT_SECRET when set. Only the embedded default may invent one (kept in the data dir)."""
    if settings.JWT_SECRET:
        # HS256 wants a key of at least 256 bits (RFC 7518 §3.2); shorter ones are guessable.
        if len(settings.JWT_SECRET.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET: must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return settings.JWT_SECRET
    if settings.database_configured:
        raise ConfigError("JWT_SECRET: required when an external database is configured")
    path = Path(settings.FLOWDESK_DATA_DIR) / "jwt.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
