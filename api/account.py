"""A signed-in user's own sign-in security: log out everywhere, change password, TOTP."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth_support import SessionResponse, client_ip, no_store, start_session, throttle_of
from api.errors import ApiError, invalid_field
from api.framework import ApiRouter, Call, NoBody, NoQuery, conflict
from api.ratelimit import too_many
from api.rbac import Permission
from engine.queries.users import AccountUser, get_account
from engine.security import (
    BCRYPT_MAX_BYTES,
    backup_code_digest,
    hash_password,
    match_totp,
    new_backup_codes,
    new_totp_secret,
    totp_uri,
    verify_password,
)
from engine.store import auth as auth_store

log = logging.getLogger(__name__)

router = ApiRouter("auth")

MIN_PASSWORD_CHARS = 10


class PasswordChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
    new_password: Annotated[str, StringConstraints(min_length=MIN_PASSWORD_CHARS, max_length=200)]

    @field_validator("new_password")
    @classmethod
    def _usable(cls, value: str, info: ValidationInfo) -> str:
        if len(value.encode()) > BCRYPT_MAX_BYTES:
            raise ValueError(f"must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if value == info.data.get("current_password"):
            raise ValueError("must differ from current_password")
        return value


class TotpSetupOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str  # base32, for typing into an authenticator by hand
    otpauth_uri: str  # the same, as a QR code's content


class TotpCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6 digits the app shows now.")


class BackupCodesOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Shown this once; each signs in once in place of a TOTP code.
    backup_codes: list[str]


class PasswordConfirm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    password: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]


@router.post("/api/v1/auth/logout", Permission.SELF, status=204, summary="Sign out on every device")
async def logout(call: Call[NoBody, NoQuery]) -> None:
    """Ends every session of the caller: all access and refresh tokens stop working."""
    user_id = call.principal.user_id
    async with call.tx() as conn:
        await conn.run_sync(
            lambda c: auth_store.end_sessions(c, tenant_id=call.tenant_id, user_id=user_id)
        )
    log.info("logged out", extra={"user_id": user_id, "tenant_id": call.tenant_id})


@router.post(
    "/api/v1/auth/password",
    Permission.SELF,
    body=PasswordChange,
    response=SessionResponse,
    summary="Change your password",
)
async def change_password(call: Call[PasswordChange, NoQuery]) -> Response:
    """Every existing session ends; the answer is a new session for this device."""
    account = await _confirm_password(call, call.body.current_password, "current_password")
    new_hash = await run_in_threadpool(hash_password, call.body.new_password)
    async with call.tx() as conn:
        version: int = await conn.run_sync(
            lambda c: auth_store.set_password(
                c, tenant_id=call.tenant_id, user_id=account.id, password_hash=new_hash
            )
        )
    log.info("password changed", extra={"user_id": account.id, "tenant_id": call.tenant_id})
    out = await start_session(
        call.deps,
        tenant_id=call.tenant_id,
        user_id=account.id,
        role=account.role,
        name=account.name,
        token_version=version,
    )
    return no_store(out)


@router.post(
    "/api/v1/auth/totp/setup",
    Permission.SELF,
    response=TotpSetupOut,
    summary="Start TOTP set-up: a new secret, not yet required at sign-in",
)
async def setup_totp(call: Call[NoBody, NoQuery]) -> Response:
    """Scan the URI into an authenticator app, then confirm with POST /auth/totp/enable."""
    account = await _account(call)
    secret = new_totp_secret()
    async with call.tx() as conn:
        stored: bool = await conn.run_sync(
            lambda c: auth_store.set_pending_totp_secret(
                c, tenant_id=call.tenant_id, user_id=account.id, secret=secret
            )
        )
    if not stored:
        raise conflict("TOTP is already enabled; disable it first.")
    return no_store(
        TotpSetupOut(secret=secret, otpauth_uri=totp_uri(secret, account=account.email))
    )


@router.post(
    "/api/v1/auth/totp/enable",
    Permission.SELF,
    body=TotpCode,
    response=BackupCodesOut,
    summary="Require TOTP at sign-in, confirmed with a current code",
)
async def enable_totp(call: Call[TotpCode, NoQuery]) -> Response:
    """Answers the 10 backup codes, once. Sign-in then needs a code from the app or one of them."""
    account = await _account(call)
    if account.totp_enabled:
        raise conflict("TOTP is already enabled.")
    if account.totp_secret is None:
        raise conflict("Start with POST /api/v1/auth/totp/setup.")
    secret = account.totp_secret
    if match_totp(secret, call.body.code) is None:
        raise invalid_field(
            "code", "does not match; check the device's clock and try the next code"
        )
    codes = new_backup_codes()
    hashes = [backup_code_digest(code) for code in codes]
    async with call.tx() as conn:
        enabled: bool = await conn.run_sync(
            lambda c: auth_store.enable_totp(
                c, tenant_id=call.tenant_id, user_id=account.id, secret=secret, backup_hashes=hashes
            )
        )
    if not enabled:  # set-up was restarted meanwhile: this code belonged to the old secret
        raise conflict("TOTP set-up changed meanwhile; scan the new secret and try again.")
    log.info("totp enabled", extra={"user_id": account.id, "tenant_id": call.tenant_id})
    return no_store(BackupCodesOut(backup_codes=codes))


@router.post(
    "/api/v1/auth/totp/disable",
    Permission.SELF,
    body=PasswordConfirm,
    status=204,
    summary="Stop requiring TOTP at sign-in (confirmed with your password)",
)
async def disable_totp(call: Call[PasswordConfirm, NoQuery]) -> None:
    """Forgets the secret and the backup codes. Idempotent."""
    account = await _confirm_password(call, call.body.password, "password")
    async with call.tx() as conn:
        await conn.run_sync(
            lambda c: auth_store.disable_totp(c, tenant_id=call.tenant_id, user_id=account.id)
        )
    log.info("totp disabled", extra={"user_id": account.id, "tenant_id": call.tenant_id})


async def _account(call: Call[Any, Any]) -> AccountUser:
    async with call.tx() as conn:
        account = await get_account(conn, call.tenant_id, call.principal.user_id)
    if account is None:  # deleted between the token check and now
        raise ApiError(401, "invalid_token", "The access token is invalid, expired or revoked.")
    return account


async def _confirm_password(call: Call[Any, Any], password: str, field: str) -> AccountUser:
    """The caller's account once `password` is proven; failures count like failed sign-ins."""
    account = await _account(call)
    throttle = throttle_of(call.deps)
    ip = client_ip(call.request)
    wait_s = await throttle.retry_after_s(ip, account.email)
    if wait_s:
        raise too_many(wait_s, "Too many failed attempts. Try again later.")
    if not await run_in_threadpool(verify_password, password, account.password_hash):
        await throttle.failed(ip, account.email)
        raise invalid_field(field, "is not your current password")
    return account
