"""Sign-in and token refresh, and the bearer-token check every other endpoint starts with."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth_support import (
    LoginBody,
    RefreshBody,
    SessionResponse,
    client_ip,
    no_store,
    openapi_operation,
    read_body,
    second_factor_ok,
    session,
    start_session,
    throttle_of,
)
from api.deps import ApiDeps, get_deps
from api.errors import ApiError
from api.ratelimit import too_many
from engine.db import async_system_tx, async_tenant_tx
from engine.queries.api_clients import get_client_by_token
from engine.queries.users import LoginUser, get_user_for_login, get_user_token_version
from engine.security import (
    InvalidTokenError,
    Role,
    decode_access_token,
    dummy_password_hash,
    is_client_token,
    new_refresh_token,
    token_digest,
    verify_password,
)
from engine.store.api_clients import mark_api_client_used
from engine.store.auth import rotate_refresh_token

log = logging.getLogger(__name__)

MAX_LOGIN_BODY_BYTES = 4_096
MAX_TOKEN_CHARS = 4_096
_INVALID_CREDENTIALS = "Invalid e-mail or password."
# Same words whether or not the e-mail has an account: the answer must not tell them apart.
_TOO_MANY_ATTEMPTS = "Too many failed sign-in attempts. Try again later."


class Principal(BaseModel):
    """The authenticated caller: a user, or an API client acting within its grants.

    For an API client `user_id` is the admin who created it (accountable for what it does)
    and `role` is a placeholder ("agent"): decide by permission with `api.rbac.may`, which
    reads `client_permissions`, never by role.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    tenant_id: int
    role: Role
    client_id: int | None = None
    client_permissions: frozenset[str] | None = None

    @property
    def is_client(self) -> bool:
        return self.client_id is not None


async def login(request: Request) -> Response:
    """POST /api/v1/auth/login: e-mail + password (+ TOTP code) in, a session out.

    Wrong e-mail and wrong password get the same 401 after the same bcrypt work; repeated
    failures per account and per IP get the same 429 whether or not the account exists.
    """
    deps = get_deps(request)
    body = await read_body(request, LoginBody, limit=MAX_LOGIN_BODY_BYTES)
    throttle = throttle_of(deps)
    ip = client_ip(request)
    wait_s = await throttle.retry_after_s(ip, body.email)
    if wait_s:
        log.info("login throttled", extra={"retry_after_s": wait_s})
        raise too_many(wait_s, _TOO_MANY_ATTEMPTS)
    async with async_system_tx(deps.db) as conn:
        user = await get_user_for_login(conn, body.email)
    matches = await run_in_threadpool(_password_matches, body.password, user)
    if user is None or not matches:
        await throttle.failed(ip, body.email)
        reason = "unknown_email" if user is None else "wrong_password"
        log.info("login rejected", extra={"reason": reason})
        raise ApiError(401, "invalid_credentials", _INVALID_CREDENTIALS)
    if user.totp_enabled:
        await _check_totp(deps, user, body, ip)
    await throttle.succeeded(body.email)
    out = await start_session(
        deps,
        tenant_id=user.tenant_id,
        user_id=user.id,
        role=user.role,
        name=user.name,
        token_version=user.token_version,
    )
    log.info("login succeeded", extra={"user_id": user.id, "tenant_id": user.tenant_id})
    return no_store(out)


async def _check_totp(deps: ApiDeps, user: LoginUser, body: LoginBody, ip: str) -> None:
    if body.totp_code is None:
        raise ApiError(
            401, "totp_required", "This account needs an authentication code (totp_code)."
        )
    ok = await second_factor_ok(
        deps,
        tenant_id=user.tenant_id,
        user_id=user.id,
        secret=user.totp_secret,
        code=body.totp_code,
    )
    if not ok:
        await throttle_of(deps).failed(ip, body.email)
        log.info("login rejected", extra={"reason": "wrong_totp", "user_id": user.id})
        raise ApiError(
            401, "invalid_totp", "The authentication code is wrong, expired or already used."
        )


async def refresh(request: Request) -> Response:
    """POST /api/v1/auth/refresh: a refresh token in, a new access and refresh token out.

    The presented token is spent. Presenting a spent or revoked one revokes its whole family.
    """
    deps = get_deps(request)
    body = await read_body(request, RefreshBody, limit=MAX_LOGIN_BODY_BYTES)
    successor = new_refresh_token()
    async with async_system_tx(deps.db) as conn:
        rotation = await conn.run_sync(
            lambda c: rotate_refresh_token(
                c,
                token_hash=token_digest(body.refresh_token),
                new_token_hash=token_digest(successor),
                ttl_s=deps.settings.JWT_REFRESH_TTL_S,
            )
        )
    if rotation.outcome != "rotated":
        level = logging.WARNING if rotation.outcome == "reused" else logging.INFO
        log.log(
            level,
            "refresh rejected",
            extra={"reason": rotation.outcome, "user_id": rotation.user_id},
        )
        raise ApiError(
            401,
            "invalid_refresh_token",
            "The refresh token is invalid, expired or revoked; sign in again.",
        )
    assert rotation.tenant_id is not None and rotation.user_id is not None
    assert rotation.role is not None and rotation.name is not None
    assert rotation.token_version is not None
    out = session(
        deps,
        successor,
        tenant_id=rotation.tenant_id,
        user_id=rotation.user_id,
        role=rotation.role,
        name=rotation.name,
        token_version=rotation.token_version,
    )
    return no_store(out)


async def require_principal(request: Request, *, allow_clients: bool = False) -> Principal:
    """The request's caller, from `Authorization: Bearer <token>`; ApiError 401 otherwise.

    A user's JWT: signature, expiry and an unchanged token_version (revocation); a suspended
    tenant or deleted user also ends every token. One read-only query. An `fdk_` token is an
    API client's: live, in an active tenant; accepted only where `allow_clients` (endpoints
    declared with ApiRouter, whose permission check reads the client's grants), 403 elsewhere.
    """
    deps = get_deps(request)
    token = _bearer_token(request)
    if is_client_token(token):
        principal = await _client_principal(deps, token)
        if not allow_clients:
            raise ApiError(403, "forbidden", "API client tokens cannot use this endpoint.")
        return principal
    try:
        claims = decode_access_token(token, secret=deps.settings.JWT_SECRET)
    except InvalidTokenError as exc:
        log.info("access token rejected", extra={"reason": str(exc)})
        raise _invalid_token() from None
    async with async_tenant_tx(deps.db, claims.tenant_id) as conn:
        current = await get_user_token_version(conn, claims.tenant_id, claims.user_id)
    if current != claims.token_version:
        log.info(
            "access token revoked",
            extra={"user_id": claims.user_id, "tenant_id": claims.tenant_id},
        )
        raise _invalid_token()
    return Principal(user_id=claims.user_id, tenant_id=claims.tenant_id, role=claims.role)


async def _client_principal(deps: ApiDeps, token: str) -> Principal:
    async with async_system_tx(deps.db) as conn:
        client = await get_client_by_token(conn, token_digest(token))
        if client is not None and client.last_used_stale:
            await conn.run_sync(
                lambda c: mark_api_client_used(c, tenant_id=client.tenant_id, client_id=client.id)
            )
    if client is None:
        log.info("api client token rejected")
        raise _invalid_token()
    return Principal(
        user_id=client.acting_user_id,
        tenant_id=client.tenant_id,
        role="agent",
        client_id=client.id,
        client_permissions=client.permissions,
    )


def _password_matches(password: str, user: LoginUser | None) -> bool:
    """bcrypt check against the user's hash, or against a dummy so the timing is the same."""
    if user is None:
        verify_password(password, dummy_password_hash())
        return False
    return verify_password(password, user.password_hash)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(
            401,
            "unauthenticated",
            "Authorization header with a bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid_token()
    return token


def _invalid_token() -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        "The access token is invalid, expired or revoked.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


routes: list[Route] = [
    Route("/api/v1/auth/login", login, methods=["POST"], name="auth_login"),
    Route("/api/v1/auth/refresh", refresh, methods=["POST"], name="auth_refresh"),
]

# The two endpoints above take no bearer token, so ApiRouter does not describe them.
AUTH_OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/auth/login": {
        "post": openapi_operation(
            "Sign in with e-mail and password (and a TOTP or backup code when enabled)",
            operation_id="auth_login",
            body=LoginBody,
            response=SessionResponse,
            description=(login.__doc__ or "").strip(),
            errors={
                "400": "The body is not JSON.",
                "401": "invalid_credentials, totp_required or invalid_totp.",
                "413": "Body too large.",
                "422": "A field is invalid; details name each one.",
                "429": "Too many failed attempts; retry after the Retry-After header.",
            },
        )
    },
    "/api/v1/auth/refresh": {
        "post": openapi_operation(
            "Exchange a refresh token for a new access token and refresh token",
            operation_id="auth_refresh",
            body=RefreshBody,
            response=SessionResponse,
            description=(refresh.__doc__ or "").strip(),
            errors={
                "400": "The body is not JSON.",
                "401": "invalid_refresh_token: unknown, expired, spent or revoked.",
                "413": "Body too large.",
                "422": "A field is invalid; details name each one.",
                "429": "Rate limited; retry after the Retry-After header.",
            },
        )
    },
}
