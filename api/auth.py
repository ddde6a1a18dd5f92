"""Login endpoint and the bearer-token check every other endpoint starts with."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.deps import get_deps
from api.errors import ApiError, invalid_request
from engine.db import async_system_tx, async_tenant_tx
from engine.queries.users import LoginUser, get_user_for_login, get_user_token_version
from engine.security import (
    InvalidTokenError,
    Role,
    decode_access_token,
    dummy_password_hash,
    issue_access_token,
    verify_password,
)

log = logging.getLogger(__name__)

MAX_LOGIN_BODY_BYTES = 4_096
MAX_TOKEN_CHARS = 4_096
_INVALID_CREDENTIALS = "Invalid e-mail or password."


class Principal(BaseModel):
    """The authenticated user a request acts for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    tenant_id: int
    role: Role


class LoginBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]


class LoginUserOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant_id: int
    role: Role
    name: str


class LoginResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth 2 token type, not a secret)
    expires_in: int
    user: LoginUserOut


async def login(request: Request) -> Response:
    """POST /api/v1/auth/login: e-mail + password in, bearer access token out.

    Wrong e-mail and wrong password get the same 401 after the same bcrypt work.
    """
    deps = get_deps(request)
    body = _parse_login_body(await _read_capped(request, MAX_LOGIN_BODY_BYTES))
    async with async_system_tx(deps.db) as conn:
        user = await get_user_for_login(conn, body.email)
    matches = await run_in_threadpool(_password_matches, body.password, user)
    if user is None:
        log.info("login rejected", extra={"reason": "unknown_email"})
        raise ApiError(401, "invalid_credentials", _INVALID_CREDENTIALS)
    if not matches:
        log.info("login rejected", extra={"reason": "wrong_password", "user_id": user.id})
        raise ApiError(401, "invalid_credentials", _INVALID_CREDENTIALS)
    ttl_s = deps.settings.JWT_ACCESS_TTL_S
    token = issue_access_token(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role,
        token_version=user.token_version,
        secret=deps.settings.JWT_SECRET,
        ttl_s=ttl_s,
    )
    log.info("login succeeded", extra={"user_id": user.id, "tenant_id": user.tenant_id})
    out = LoginResponse(
        access_token=token,
        expires_in=ttl_s,
        user=LoginUserOut(id=user.id, tenant_id=user.tenant_id, role=user.role, name=user.name),
    )
    return Response(
        out.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def require_principal(request: Request) -> Principal:
    """The request's user, from `Authorization: Bearer <token>`; ApiError 401 otherwise.

    Checks signature, expiry and that the user's token_version is unchanged (revocation);
    a suspended tenant or deleted user also ends every token. One read-only query.
    """
    deps = get_deps(request)
    token = _bearer_token(request)
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


def _password_matches(password: str, user: LoginUser | None) -> bool:
    """bcrypt check against the user's hash, or against a dummy so the timing is the same."""
    if user is None:
        verify_password(password, dummy_password_hash())
        return False
    return verify_password(password, user.password_hash)


def _parse_login_body(raw: bytes) -> LoginBody:
    try:
        return LoginBody.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ApiError(400, "invalid_json", "Request body must be a JSON object.") from None
        raise invalid_request(exc, where="request body") from None


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes before buffering it all."""
    too_large = ApiError(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


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
]
