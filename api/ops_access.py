"""Who may operate: a super user (JWT, or e-mail + password on the console) or the ops token.

The JSON API takes `Authorization: Bearer <OPS_TOKEN | super user's access token>`. The console
signs in once and keeps a server-side session in Redis, named by an HttpOnly, SameSite=Strict
cookie; its forms carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.auth import require_principal
from api.auth_support import client_ip, second_factor_ok, throttle_of
from api.deps import ApiDeps, get_deps
from api.errors import ApiError
from api.ratelimit import redis_of
from config import Settings
from engine.db import async_system_tx, async_tenant_tx
from engine.queries.users import get_user_for_login, get_user_token_version
from engine.security import dummy_password_hash, token_digest, verify_password

log = logging.getLogger(__name__)

SESSION_COOKIE = "fd_ops"
SESSION_TTL_S = 8 * 3600


@dataclass(frozen=True)
class Operator:
    """Who is acting, for the audit trail in logs: "ops-token" or "user:<id>"."""

    name: str
    csrf: str = ""
    session_id: str = ""


def is_ops_token(settings: Settings, token: str) -> bool:
    """Constant-time comparison with OPS_TOKEN; always False while it is unset."""
    if not settings.OPS_TOKEN:
        return False
    return hmac.compare_digest(token.encode(), settings.OPS_TOKEN.encode())


async def require_operator(request: Request) -> Operator:
    """The API's check: 401 without valid credentials, 403 for a signed-in non-super user."""
    deps = get_deps(request)
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and is_ops_token(deps.settings, token.strip()):
        return Operator("ops-token")
    principal = await require_principal(request)
    if principal.role != "super":
        raise ApiError(403, "forbidden", "Operations need a super user or the ops token.")
    return Operator(f"user:{principal.user_id}")


class SignInRefused(Exception):
    """Console sign-in failed; the message is safe to show on the form."""


async def sign_in(
    request: Request, *, token: str, email: str, password: str, totp_code: str
) -> str:
    """Check console credentials and open a session; return the session id (the cookie)."""
    deps = get_deps(request)
    if token:
        if not is_ops_token(deps.settings, token):
            log.info("ops console sign-in rejected", extra={"reason": "wrong_ops_token"})
            raise SignInRefused("That ops token is not valid.")
        record: dict[str, object] = {"who": "ops-token", "token": token_digest(token)}
    else:
        record = await _super_user(request, deps, email, password, totp_code)
    session_id = secrets.token_urlsafe(32)
    record["csrf"] = secrets.token_urlsafe(24)
    await _redis(deps).set(_key(deps, session_id), json.dumps(record), ex=SESSION_TTL_S)
    log.info("ops console sign-in", extra={"operator": record["who"]})
    return session_id


async def _super_user(
    request: Request, deps: ApiDeps, email: str, password: str, totp_code: str
) -> dict[str, object]:
    if not email or not password:
        raise SignInRefused("Enter the ops token, or a super user's e-mail and password.")
    throttle = throttle_of(deps)
    ip = client_ip(request)
    if await throttle.retry_after_s(ip, email):
        raise SignInRefused("Too many failed attempts; try again later.")
    async with async_system_tx(deps.db) as conn:
        user = await get_user_for_login(conn, email)
    hashed = user.password_hash if user is not None else dummy_password_hash()
    matches = await run_in_threadpool(verify_password, password, hashed)
    if user is None or not matches:
        await throttle.failed(ip, email)
        raise SignInRefused("Wrong e-mail or password.")
    if user.role != "super":
        raise SignInRefused("Only super users may use the ops console.")
    if user.totp_enabled and not (
        totp_code
        and await second_factor_ok(
            deps, tenant_id=user.tenant_id, user_id=user.id, secret=user.totp_secret, code=totp_code
        )
    ):
        await throttle.failed(ip, email)
        raise SignInRefused("This account needs a valid authentication code.")
    await throttle.succeeded(email)
    return {
        "who": f"user:{user.id}",
        "tenant_id": user.tenant_id,
        "user_id": user.id,
        "token_version": user.token_version,
    }


async def console_operator(request: Request) -> Operator | None:
    """The console session named by the cookie, if it is still valid."""
    deps = get_deps(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id or len(session_id) > 100:
        return None
    raw = await _redis(deps).get(_key(deps, session_id))
    if raw is None:
        return None
    record = json.loads(raw)
    if not await _still_valid(deps, record):
        await sign_out(request)
        return None
    return Operator(str(record["who"]), csrf=str(record["csrf"]), session_id=session_id)


async def _still_valid(deps: ApiDeps, record: dict[str, object]) -> bool:
    """An ops-token session ends when OPS_TOKEN changes; a user's when their tokens are revoked."""
    if record["who"] == "ops-token":
        current = deps.settings.OPS_TOKEN
        return current is not None and hmac.compare_digest(
            token_digest(current), str(record["token"])
        )
    tenant_id, user_id = int(str(record["tenant_id"])), int(str(record["user_id"]))
    async with async_tenant_tx(deps.db, tenant_id) as conn:
        version = await get_user_token_version(conn, tenant_id, user_id)
    return version == record["token_version"]


async def sign_out(request: Request) -> None:
    deps = get_deps(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if session_id and len(session_id) <= 100:
        await _redis(deps).delete(_key(deps, session_id))


def csrf_ok(operator: Operator, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(operator.csrf.encode(), sent.encode())


def _key(deps: ApiDeps, session_id: str) -> str:
    # Stored by digest: a read of Redis does not yield a usable cookie.
    return f"{deps.settings.QUEUE_PREFIX}:ops:session:{token_digest(session_id)}"


def _redis(deps: ApiDeps) -> aioredis.Redis:
    client = redis_of(deps)
    if client is None:
        raise ApiError(503, "unavailable", "The ops console needs Redis.")
    return client
