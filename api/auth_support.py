"""Sign-in plumbing shared by the auth endpoints: bodies, sessions, second factors, OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from api.bodies import read_capped
from api.deps import ApiDeps
from api.errors import ApiError, invalid_request
from api.ratelimit import LoginThrottle, redis_of
from engine.db import async_tenant_tx
from engine.security import (
    Role,
    backup_code_digest,
    issue_access_token,
    match_totp,
    new_refresh_token,
    token_digest,
)
from engine.store import auth as auth_store

M = TypeVar("M", bound=BaseModel)
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class LoginBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=3, max_length=320, pattern=_PRINTABLE),
    ]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
    # Needed once the account has TOTP on: the app's 6 digits, or one unused backup code.
    totp_code: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=6, max_length=32, pattern=r"^[0-9A-Za-z -]+$"
            ),
        ]
        | None
    ) = None


class RefreshBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LoginUserOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant_id: int
    role: Role
    name: str


class SessionResponse(BaseModel):
    """A signed-in session: a short access token and the refresh token that renews it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth 2 token type, not a secret)
    expires_in: int
    # Single use: each refresh answers with a new one; presenting a spent one ends the session.
    refresh_token: str
    refresh_expires_in: int
    user: LoginUserOut


def throttle_of(deps: ApiDeps) -> LoginThrottle:
    return LoginThrottle(redis_of(deps), deps.settings)


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def read_body(request: Request, model: type[M], *, limit: int) -> M:
    """The JSON body as `model`: 413 past `limit` bytes, 400 if not JSON, 422 naming fields."""
    too_large = ApiError(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
    raw = await read_capped(request, limit=limit, too_large=too_large)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ApiError(400, "invalid_json", "Request body must be a JSON object.") from None
        raise invalid_request(exc, where="request body") from None


async def start_session(
    deps: ApiDeps, *, tenant_id: int, user_id: int, role: Role, name: str, token_version: int
) -> SessionResponse:
    """Issue an access token and the first refresh token of a new family."""
    refresh = new_refresh_token()
    ttl_s = deps.settings.JWT_REFRESH_TTL_S
    async with async_tenant_tx(deps.db, tenant_id) as conn:
        await conn.run_sync(
            lambda c: auth_store.insert_refresh_token(
                c,
                tenant_id=tenant_id,
                user_id=user_id,
                token_hash=token_digest(refresh),
                token_version=token_version,
                ttl_s=ttl_s,
            )
        )
    return session(
        deps,
        refresh,
        tenant_id=tenant_id,
        user_id=user_id,
        role=role,
        name=name,
        token_version=token_version,
    )


def session(
    deps: ApiDeps,
    refresh_token: str,
    *,
    tenant_id: int,
    user_id: int,
    role: Role,
    name: str,
    token_version: int,
) -> SessionResponse:
    """The session answer for an already stored refresh token."""
    settings = deps.settings
    access = issue_access_token(
        user_id=user_id,
        tenant_id=tenant_id,
        role=role,
        token_version=token_version,
        secret=settings.JWT_SECRET,
        ttl_s=settings.JWT_ACCESS_TTL_S,
    )
    return SessionResponse(
        access_token=access,
        expires_in=settings.JWT_ACCESS_TTL_S,
        refresh_token=refresh_token,
        refresh_expires_in=settings.JWT_REFRESH_TTL_S,
        user=LoginUserOut(id=user_id, tenant_id=tenant_id, role=role, name=name),
    )


def no_store(model: BaseModel, status: int = 200) -> Response:
    """JSON that carries credentials: no cache may keep it."""
    return Response(
        model.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def second_factor_ok(
    deps: ApiDeps, *, tenant_id: int, user_id: int, secret: str | None, code: str
) -> bool:
    """A current TOTP code not used before, or an unused backup code (which is spent)."""
    if code.isdigit() and len(code) == 6:
        step = None if secret is None else match_totp(secret, code)
        return step is not None and await throttle_of(deps).first_use(user_id, step)
    digest = backup_code_digest(code)
    async with async_tenant_tx(deps.db, tenant_id) as conn:
        spent: bool = await conn.run_sync(
            lambda c: auth_store.consume_backup_code(
                c, tenant_id=tenant_id, user_id=user_id, code_hash=digest
            )
        )
    return spent


def openapi_operation(
    summary: str,
    *,
    operation_id: str,
    body: type[BaseModel],
    response: type[BaseModel] | None,
    errors: dict[str, str],
    description: str = "",
) -> dict[str, Any]:
    """An OpenAPI operation for a route declared outside ApiRouter (no bearer token needed)."""
    ok: dict[str, Any] = {"description": "OK"}
    if response is not None:
        schema = inline_schema(response, mode="serialization")
        ok["content"] = {"application/json": {"schema": schema}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["auth"],
        "security": [],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(body, mode="validation")}},
        },
        "responses": {
            "200" if response is not None else "204": ok,
            **{status: {"description": text, "content": error} for status, text in errors.items()},
        },
    }
    if description:
        op["description"] = description
    return op


def inline_schema(
    model: type[BaseModel], *, mode: Literal["validation", "serialization"]
) -> dict[str, Any]:
    """`model`'s JSON schema with its $defs substituted in place, so it stands alone."""
    schema = model.model_json_schema(mode=mode)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
