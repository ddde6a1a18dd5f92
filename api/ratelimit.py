"""Request rate limits in Redis: per IP and per tenant for the API, failed sign-ins per account."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError, error_response
from config import Settings
from engine.security import InvalidTokenError, decode_access_token, is_client_token, token_digest

log = logging.getLogger(__name__)

# Every limit fails open: with Redis unreachable requests go through (a warning is logged at
# most once a minute), because refusing every request would turn a cache outage into a full
# outage. A Redis that answers slower than this is treated as down.
REDIS_BUDGET_S = 0.25
WINDOW_S = 60
_EXEMPT_PREFIXES = ("/webhooks/",)  # providers are never throttled here; ingest has backpressure
_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes
_WARN_EVERY_S = 60.0
_last_warning = 0.0


def redis_of(deps: object) -> aioredis.Redis | None:
    """The app's Redis client, or None when these deps have none (limits then stay off)."""
    client = getattr(deps, "redis", None)
    return client if isinstance(client, aioredis.Redis) else None


async def guarded(call: Callable[[], Awaitable[Any]], *, what: str) -> Any | None:
    """Run a Redis call within REDIS_BUDGET_S; None (and a rate-limited warning) on failure."""
    global _last_warning
    try:
        async with asyncio.timeout(REDIS_BUDGET_S):
            return await call()
    except (RedisError, OSError, TimeoutError) as exc:
        now = time.monotonic()
        if now - _last_warning >= _WARN_EVERY_S:
            _last_warning = now
            log.warning(
                "redis unavailable; limit not enforced",
                extra={"limit": what, "error": type(exc).__name__},
            )
        return None


def too_many(retry_after_s: int, message: str) -> ApiError:
    return ApiError(
        429, "rate_limited", message, headers={"Retry-After": str(max(1, retry_after_s))}
    )


class RateLimitMiddleware:
    """Counts REST requests per client IP and per tenant in one-minute windows; 429 beyond.

    The tenant is read from the bearer token's signed claims without a database hit (an API
    client token counts on its own); an invalid token counts against its IP only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        deps = getattr(scope["app"].state, "deps", None)
        client = redis_of(deps)
        if deps is None or client is None:
            await self.app(scope, receive, send)
            return
        wait_s = await self._wait_s(client, deps.settings, scope)
        if wait_s:
            error = too_many(wait_s, f"Too many requests; retry in {wait_s} seconds.")
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _wait_s(self, client: aioredis.Redis, settings: Settings, scope: Scope) -> int:
        now = time.time()
        window = int(now // WINDOW_S)
        prefix = f"{settings.QUEUE_PREFIX}:api"
        limits = {f"{prefix}:ip:{_client_ip(scope)}:{window}": settings.API_RATE_PER_IP_PER_MIN}
        caller = _caller_key(scope, settings.JWT_SECRET)
        if caller is not None:
            limits[f"{prefix}:{caller}:{window}"] = settings.API_RATE_PER_TENANT_PER_MIN

        async def count() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for key in limits:
                pipe.incr(key)
                pipe.expire(key, WINDOW_S + 5)
            return list(await pipe.execute())

        counts = await guarded(count, what="API rate limit")
        if counts is None:
            return 0
        over = any(int(n) > limit for n, limit in zip(counts[::2], limits.values(), strict=True))
        return int(WINDOW_S - now % WINDOW_S) + 1 if over else 0


def _exempt(path: str) -> bool:
    return path in _EXEMPT_PATHS or path.startswith(_EXEMPT_PREFIXES)


def _client_ip(scope: Scope) -> str:
    # uvicorn's --proxy-headers puts the forwarded address here for trusted proxies only;
    # reading X-Forwarded-For ourselves would let anyone pick their own bucket.
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _caller_key(scope: Scope, secret: str) -> str | None:
    """`tenant:<id>` from a valid access token, `client:<digest>` for an API client token."""
    for name, value in scope.get("headers", ()):
        if name != b"authorization":
            continue
        scheme, _, token = value.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 4_096:
            return None
        if is_client_token(token):
            return f"client:{token_digest(token)[:32]}"
        if not secret:
            return None
        try:
            return f"tenant:{decode_access_token(token, secret=secret).tenant_id}"
        except InvalidTokenError:
            return None
    return None


class LoginThrottle:
    """Failed sign-ins per account and per IP in a fixed window (LOGIN_* settings).

    The account key is a digest of the e-mail as typed, whether or not such an account exists,
    so unknown and known e-mails are throttled (and answered) exactly alike.
    """

    def __init__(self, client: aioredis.Redis | None, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._prefix = f"{settings.QUEUE_PREFIX}:login"

    def _keys(self, ip: str, email: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"{self._prefix}:account:{account}", f"{self._prefix}:ip:{ip}"

    async def retry_after_s(self, ip: str, email: str) -> int:
        """Seconds until this IP/account may try again; 0 when it may now."""
        client = self._client
        if client is None:
            return 0
        account_key, ip_key = self._keys(ip, email)

        async def read() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for key in (account_key, ip_key):
                pipe.get(key)
                pipe.ttl(key)
            return list(await pipe.execute())

        got = await guarded(read, what="login throttle")
        if got is None:
            return 0
        account_n, account_ttl, ip_n, ip_ttl = got
        waits = []
        if int(account_n or 0) >= self._settings.LOGIN_MAX_FAILURES_PER_ACCOUNT:
            waits.append(int(account_ttl))
        if int(ip_n or 0) >= self._settings.LOGIN_MAX_FAILURES_PER_IP:
            waits.append(int(ip_ttl))
        return max(1, *waits) if waits else 0

    async def failed(self, ip: str, email: str) -> None:
        client = self._client
        if client is None:
            return
        window_s = self._settings.LOGIN_FAILURE_WINDOW_S

        async def count() -> None:
            pipe = client.pipeline(transaction=True)
            for key in self._keys(ip, email):
                # The window starts at the first failure: SET NX fixes its expiry once.
                pipe.set(key, 0, ex=window_s, nx=True)
                pipe.incr(key)
            await pipe.execute()

        await guarded(count, what="login throttle")

    async def succeeded(self, email: str) -> None:
        """A correct sign-in clears its account's count (not its IP's)."""
        client = self._client
        if client is None:
            return
        account_key, _ = self._keys("", email)
        await guarded(lambda: client.delete(account_key), what="login throttle")

    async def first_use(self, user_id: int, step: int) -> bool:
        """True the first time a TOTP code of this time step is used (no replay in its window)."""
        client = self._client
        if client is None:
            return True
        key = f"{self._prefix}:totp:{user_id}:{step}"

        async def claim() -> bool:
            # Three 30-second steps are accepted around now, so 180 s outlives any reuse.
            return bool(await client.set(key, 1, ex=180, nx=True))

        return await guarded(claim, what="TOTP replay check") is not False
