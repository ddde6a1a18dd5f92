"""Password hashing (bcrypt), short-lived JWT access tokens, opaque tokens and TOTP (DESIGN §7)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

import bcrypt
import jwt
import pyotp
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from engine.errors import PermanentError

# Cost factor for new hashes. Tests lower it (minimum 4) so seeding users stays fast.
BCRYPT_ROUNDS = 12
# bcrypt only ever reads the first 72 bytes of a password.
BCRYPT_MAX_BYTES = 72
JWT_ALGORITHM = "HS256"
ACCESS_TYP = "access"

Role = Literal["super", "admin", "supervisor", "agent"]

# Refresh tokens, API client tokens and backup codes are random strings stored only as SHA-256
# digests: they carry at least 79 random bits, so a fast hash suffices where a password needs
# bcrypt.
REFRESH_TOKEN_PREFIX = "fdr_"  # noqa: S105 (a marker, not a secret)
CLIENT_TOKEN_PREFIX = "fdk_"  # noqa: S105 (a marker, not a secret)
# What an API client list shows of a token, so an admin can tell which one leaked.
CLIENT_TOKEN_SHOWN_CHARS = 12
TOTP_ISSUER = "FlowDesk"
BACKUP_CODE_COUNT = 10
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_BACKUP_GROUPS = 4  # 4 groups of 4 characters from 31: ≈79 random bits


class InvalidTokenError(PermanentError):
    """An access token that is malformed, forged, expired or not an access token."""


class AccessClaims(BaseModel):
    """What a verified access token says about its bearer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    tenant_id: int
    role: Role
    token_version: int
    exp: datetime


class _AccessPayload(BaseModel):
    """The JWT body as signed; strict so a hand-edited type is a rejection, not a coercion."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    typ: Literal["access"]
    sub: str = Field(pattern=r"^[1-9][0-9]{0,18}$")
    tenant_id: StrictInt = Field(ge=1)
    role: Role
    token_version: StrictInt
    exp: StrictInt


def hash_password(plain: str) -> str:
    """A bcrypt hash of `plain` at BCRYPT_ROUNDS; ValueError past bcrypt's 72-byte limit."""
    raw = plain.encode()
    if len(raw) > BCRYPT_MAX_BYTES:
        raise ValueError(f"password longer than {BCRYPT_MAX_BYTES} bytes")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode("ascii")


def verify_password(plain: str, hashed: str) -> bool:
    """True when `plain` matches `hashed`; False for a mismatch or a malformed hash.

    CPU-bound (≈250 ms at cost 12): call it from a worker thread in async code.
    """
    # Hashes imported from the Node.js system (bcryptjs) were made from the first 72 bytes,
    # so verification truncates the same way instead of locking those users out.
    raw = plain.encode()[:BCRYPT_MAX_BYTES]
    try:
        return bcrypt.checkpw(raw, hashed.encode("ascii"))
    except ValueError:  # malformed or non-bcrypt hash (UnicodeEncodeError is a ValueError)
        return False


def dummy_password_hash() -> str:
    """A hash of a random password at the current cost, to check against for unknown users.

    Checking it costs the same time as checking a real user's hash, so a login response does
    not reveal whether the e-mail exists. Cached per cost; call once at start-up to warm it.
    """
    return _dummy_hash_for(BCRYPT_ROUNDS)


@functools.cache
def _dummy_hash_for(rounds: int) -> str:
    throwaway = secrets.token_bytes(32).hex()[:BCRYPT_MAX_BYTES].encode()
    return bcrypt.hashpw(throwaway, bcrypt.gensalt(rounds=rounds)).decode("ascii")


def issue_access_token(
    *,
    user_id: int,
    tenant_id: int,
    role: Role,
    token_version: int,
    secret: str,
    ttl_s: int,
    now: datetime | None = None,
) -> str:
    """A signed HS256 access token valid for `ttl_s` seconds from `now` (default: the clock)."""
    if not secret:
        raise ValueError("an empty JWT secret would let anyone mint tokens")
    issued = now if now is not None else datetime.now(UTC)
    claims = {
        "typ": ACCESS_TYP,
        "sub": str(user_id),
        "tenant_id": tenant_id,
        "role": role,
        "token_version": token_version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> AccessClaims:
    """Verify signature, expiry and type of `token`; raise InvalidTokenError on any problem.

    Does not check revocation: compare `token_version` with the user row for that.
    """
    if not secret:
        raise ValueError("an empty JWT secret would accept forged tokens")
    try:
        body = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
        payload = _AccessPayload.model_validate(body)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"access token rejected: {type(exc).__name__}") from None
    except ValidationError:
        raise InvalidTokenError("access token rejected: unexpected claims") from None
    return AccessClaims(
        user_id=int(payload.sub),
        tenant_id=payload.tenant_id,
        role=payload.role,
        token_version=payload.token_version,
        exp=datetime.fromtimestamp(payload.exp, UTC),
    )


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which an opaque token or code is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    """A random opaque refresh token (256 bits)."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_client_token() -> str:
    """A random API client token: `fdk_` and 43 URL-safe characters (256 bits)."""
    return CLIENT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_client_token(token: str) -> bool:
    return token.startswith(CLIENT_TOKEN_PREFIX)


def new_totp_secret() -> str:
    """A base32 TOTP secret (160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def totp_uri(secret: str, *, account: str) -> str:
    """The otpauth:// URI an authenticator app scans as a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def match_totp(secret: str, code: str, *, at: datetime | None = None) -> int | None:
    """The 30-second time step `code` is valid for (±1 step of clock drift), else None.

    Callers remember the step so the same code cannot be replayed within its window.
    """
    if len(code) != 6 or not (code.isascii() and code.isdigit()):  # not "١٢٣٤٥٦" or "²"
        return None
    totp = pyotp.TOTP(secret)
    when = at if at is not None else datetime.now(UTC)
    step = totp.timecode(when)
    for offset in (0, -1, 1):
        if hmac.compare_digest(totp.at(when, counter_offset=offset), code):
            return step + offset
    return None


def new_backup_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """Single-use recovery codes like `k7mp-2xqa-9dzr-tnhe`."""
    return [
        "-".join(
            "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(4))
            for _ in range(_BACKUP_GROUPS)
        )
        for _ in range(count)
    ]


def backup_code_digest(code: str) -> str:
    """Digest of a backup code as typed: case, spaces and dashes do not matter."""
    return token_digest("".join(ch for ch in code.lower() if ch.isalnum()))
