"""The engine's error hierarchy: retry what the world may fix, dead-letter what it never will."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class RetryableError(EngineError):
    """A transient failure (timeout, 5xx, 429, lost connection): retry with backoff.

    `delay_ms` carries a provider's own retry-after when it gave one.
    """

    def __init__(self, message: str, *, delay_ms: int | None = None) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


class PermanentError(EngineError):
    """A failure no retry can fix (bad payload, rejected recipient): dead-letter at once."""


class RateLimitedError(RetryableError):
    """The provider or our own bucket said slow down."""


class DatabaseUnavailableError(RetryableError):
    """PostgreSQL could not be reached or dropped the connection."""


class InvalidPayloadError(PermanentError):
    """A provider body or event that does not have the documented shape."""


class SignatureMismatchError(PermanentError):
    """A webhook whose signature does not match its raw body."""


class UnknownChannelError(PermanentError):
    """A webhook addressed to a channel this engine does not have."""


class NotFoundError(PermanentError):
    """A row the caller asked for does not exist in the caller's tenant."""
