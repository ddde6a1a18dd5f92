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


class ProviderUnavailableError(RetryableError):
    """The provider timed out, refused the connection or answered 5xx."""


class ProviderRejectedError(PermanentError):
    """The provider refused this send for good (invalid recipient, blocked, opted out,
    outside the 24-hour window, bad token…). `code` is the provider's own error code."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RecipientMovedError(PermanentError):
    """The provider says the recipient has a new address (Telegram migrate_to_chat_id)."""

    def __init__(self, message: str, *, new_recipient: str) -> None:
        super().__init__(message)
        self.new_recipient = new_recipient
