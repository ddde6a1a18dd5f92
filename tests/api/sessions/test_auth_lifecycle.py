"""Sessions as a user lives them: refresh rotation, theft detection, expiry, logout and
password change, and how the sign-in endpoints are documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api import auth
from config import Settings
from engine.security import issue_access_token
from tests.api.auth_helpers import (
    User,
    bearer,
    execute,
    refresh,
    scalar,
    session_of,
    sign_in,
    works,
)

pytestmark = pytest.mark.anyio


# Refresh tokens ------------------------------------------------------------------------


async def test_login_answers_a_refresh_token_that_rotates(
    http: httpx.AsyncClient, user: User, settings: Settings
) -> None:
    first = await sign_in(http, user)
    body = first.json()
    assert first.headers["cache-control"] == "no-store"
    assert body["refresh_expires_in"] == settings.JWT_REFRESH_TTL_S
    assert body["expires_in"] == settings.JWT_ACCESS_TTL_S

    renewed = await refresh(http, body["refresh_token"])

    assert renewed.status_code == 200, renewed.text
    assert renewed.headers["cache-control"] == "no-store"
    pair = renewed.json()
    assert pair["refresh_token"] != body["refresh_token"]
    assert pair["user"]["id"] == user.id
    assert await works(http, pair["access_token"])
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.JWT_ACCESS_TTL_S
    # The next refresh uses the new token; the old one is spent.
    assert (await refresh(http, pair["refresh_token"])).status_code == 200


async def test_replaying_a_spent_refresh_token_revokes_the_whole_family(
    http: httpx.AsyncClient, user: User, db: AsyncEngine
) -> None:
    stolen = (await session_of(http, user))["refresh"]
    legit = (await refresh(http, stolen)).json()["refresh_token"]

    replay = await refresh(http, stolen)

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_refresh_token"
    # The legitimate holder's newer token died with the family: both must sign in again.
    assert (await refresh(http, legit)).status_code == 401
    live = await scalar(
        db,
        "SELECT count(*) FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL",
        u=user.id,
    )
    assert live == 0


async def test_another_login_is_another_family_and_survives_a_replay(
    http: httpx.AsyncClient, user: User
) -> None:
    laptop = await session_of(http, user)
    phone = await session_of(http, user)
    await refresh(http, laptop["refresh"])

    assert (await refresh(http, laptop["refresh"])).status_code == 401

    assert (await refresh(http, phone["refresh"])).status_code == 200


async def test_an_expired_refresh_token_is_refused(
    http: httpx.AsyncClient, user: User, db: AsyncEngine
) -> None:
    token = (await session_of(http, user))["refresh"]
    await execute(
        db,
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = :u",
        u=user.id,
    )

    response = await refresh(http, token)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_refresh_token"


async def test_a_refresh_token_from_an_older_token_version_is_refused(
    http: httpx.AsyncClient, user: User, db: AsyncEngine
) -> None:
    token = (await session_of(http, user))["refresh"]
    await execute(db, "UPDATE users SET token_version = token_version + 1 WHERE id = :u", u=user.id)

    assert (await refresh(http, token)).status_code == 401


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{}", 422),
        (b'{"refresh_token": ""}', 422),
        (b'{"refresh_token": "fdr_x", "extra": 1}', 422),
        (b"not json", 400),
        (b'{"refresh_token": "fdr_never-issued"}', 401),
    ],
)
async def test_bad_refresh_requests_are_refused_cleanly(
    http: httpx.AsyncClient, content: bytes, status: int
) -> None:
    response = await http.post(
        "/api/v1/auth/refresh", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status, response.text
    assert "error" in response.json()


async def test_an_expired_access_token_is_refused(
    http: httpx.AsyncClient, user: User, settings: Settings
) -> None:
    stale = issue_access_token(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role="agent",
        token_version=0,
        secret=settings.JWT_SECRET,
        ttl_s=settings.JWT_ACCESS_TTL_S,
        now=datetime.now(UTC) - timedelta(seconds=settings.JWT_ACCESS_TTL_S + 1),
    )

    assert not await works(http, stale)


# Logout and password change ------------------------------------------------------------


async def test_logout_ends_every_access_and_refresh_token(
    http: httpx.AsyncClient, user: User
) -> None:
    here = await session_of(http, user)
    elsewhere = await session_of(http, user)

    response = await http.post("/api/v1/auth/logout", headers=bearer(here["access"]))

    assert response.status_code == 204
    for session in (here, elsewhere):
        assert not await works(http, session["access"])
        assert (await refresh(http, session["refresh"])).status_code == 401
    assert (await sign_in(http, user)).status_code == 200  # signing in again still works


async def test_changing_password_ends_other_sessions_and_starts_a_new_one(
    http: httpx.AsyncClient, user: User, db: AsyncEngine
) -> None:
    old = await session_of(http, user)
    new_password = "a-brand-new-passphrase"

    response = await http.post(
        "/api/v1/auth/password",
        json={"current_password": user.password, "new_password": new_password},
        headers=bearer(old["access"]),
    )

    assert response.status_code == 200, response.text
    fresh = response.json()
    assert await works(http, fresh["access_token"])
    assert not await works(http, old["access"])
    assert (await refresh(http, old["refresh"])).status_code == 401
    assert (await sign_in(http, user)).status_code == 401
    renamed = User(user.id, user.tenant_id, user.email, new_password)
    assert (await sign_in(http, renamed)).status_code == 200
    changed = await scalar(db, "SELECT password_changed_at FROM users WHERE id = :u", u=user.id)
    assert isinstance(changed, datetime)


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [
        ("wrong-current-password", "another-good-passphrase", "current_password"),
        (None, "short", "new_password"),
        (None, None, "new_password"),  # the same as the current one
        (None, "x" * 73, "new_password"),  # past bcrypt's 72 bytes
    ],
)
async def test_a_bad_password_change_names_the_field_and_changes_nothing(
    http: httpx.AsyncClient, user: User, current: str | None, new: str | None, field: str
) -> None:
    access = (await session_of(http, user))["access"]
    body = {"current_password": current or user.password, "new_password": new or user.password}

    response = await http.post("/api/v1/auth/password", json=body, headers=bearer(access))

    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert user.password not in response.text
    assert await works(http, access)


# Who may use these endpoints, and how they are documented ------------------------------


async def test_account_endpoints_need_a_signed_in_user(http: httpx.AsyncClient) -> None:
    for path in ("logout", "password", "totp/setup", "totp/enable", "totp/disable"):
        response = await http.post(f"/api/v1/auth/{path}", json={})
        assert response.status_code == 401, path


def test_auth_endpoints_are_described_for_openapi() -> None:
    paths = auth.AUTH_OPENAPI_PATHS
    login = paths["/api/v1/auth/login"]["post"]
    refresh_op = paths["/api/v1/auth/refresh"]["post"]

    body = login["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"email", "password", "totp_code"}
    assert body["additionalProperties"] is False
    ok = login["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"access_token", "refresh_token", "user"} <= set(ok["properties"])
    assert {"401", "422", "429"} <= set(login["responses"])
    assert refresh_op["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "refresh_token"
    ]
    assert "#/$defs/" not in json.dumps(paths)  # every schema stands alone
