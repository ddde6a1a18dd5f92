"""Second factors and brute-force protection: TOTP set-up, codes and backup codes, and
sign-in throttling that never tells a known e-mail from an unknown one."""

from __future__ import annotations

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.auth_helpers import (
    User,
    bearer,
    build_app,
    http_client,
    scalar,
    session_of,
    settings_for,
    sign_in,
)

pytestmark = pytest.mark.anyio


# TOTP ----------------------------------------------------------------------------------


async def enable_totp(http: httpx.AsyncClient, user: User) -> tuple[pyotp.TOTP, list[str]]:
    access = (await session_of(http, user))["access"]
    setup = await http.post("/api/v1/auth/totp/setup", headers=bearer(access))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(secret)
    # The current code: a step boundary passing before the server checks it leaves it one
    # step old, which is still inside the drift window (test_totp_drift_window below).
    enabled = await http.post(
        "/api/v1/auth/totp/enable", json={"code": totp.now()}, headers=bearer(access)
    )
    assert enabled.status_code == 200, enabled.text
    codes: list[str] = enabled.json()["backup_codes"]
    return totp, codes


async def test_totp_is_required_once_enabled(http: httpx.AsyncClient, user: User) -> None:
    totp, codes = await enable_totp(http, user)
    assert len(codes) == len(set(codes)) == 10

    missing = await sign_in(http, user)
    wrong = await sign_in(http, user, totp_code="000000" if totp.now() != "000000" else "111111")
    right = await sign_in(http, user, totp_code=totp.now())

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "totp_required"
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_totp"
    assert right.status_code == 200, right.text


async def test_a_totp_code_cannot_be_replayed(http: httpx.AsyncClient, user: User) -> None:
    totp, _ = await enable_totp(http, user)
    code = totp.now()

    assert (await sign_in(http, user, totp_code=code)).status_code == 200
    replay = await sign_in(http, user, totp_code=code)

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_totp"


async def test_a_backup_code_signs_in_exactly_once(
    http: httpx.AsyncClient, user: User, db: AsyncEngine
) -> None:
    _, codes = await enable_totp(http, user)

    first = await sign_in(http, user, totp_code=codes[0].upper())  # as typed from paper
    again = await sign_in(http, user, totp_code=codes[0])

    assert first.status_code == 200, first.text
    assert again.status_code == 401
    left = await scalar(
        db, "SELECT cardinality(backup_code_hashes) FROM users WHERE id = :u", u=user.id
    )
    assert left == 9
    stored = await scalar(db, "SELECT backup_code_hashes::text FROM users WHERE id = :u", u=user.id)
    assert codes[1] not in str(stored)  # only digests are kept


async def test_totp_setup_and_enable_refuse_what_does_not_fit(
    http: httpx.AsyncClient, user: User
) -> None:
    access = (await session_of(http, user))["access"]
    early = await http.post(
        "/api/v1/auth/totp/enable", json={"code": "123456"}, headers=bearer(access)
    )
    await http.post("/api/v1/auth/totp/setup", headers=bearer(access))
    wrong = await http.post(
        "/api/v1/auth/totp/enable", json={"code": "12345"}, headers=bearer(access)
    )

    assert early.status_code == 409
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"][0]["field"] == "code"

    totp, _ = await enable_totp(http, user)
    access = (await sign_in(http, user, totp_code=totp.now())).json()["access_token"]
    again = await http.post("/api/v1/auth/totp/setup", headers=bearer(access))
    assert again.status_code == 409


async def test_disabling_totp_needs_the_password(http: httpx.AsyncClient, user: User) -> None:
    totp, _ = await enable_totp(http, user)
    access = (await sign_in(http, user, totp_code=totp.now())).json()["access_token"]

    wrong = await http.post(
        "/api/v1/auth/totp/disable", json={"password": "not-it"}, headers=bearer(access)
    )
    assert wrong.status_code == 422
    assert (await sign_in(http, user)).json()["error"]["code"] == "totp_required"

    right = await http.post(
        "/api/v1/auth/totp/disable", json={"password": user.password}, headers=bearer(access)
    )
    assert right.status_code == 204
    assert (await sign_in(http, user)).status_code == 200


# Sign-in throttling --------------------------------------------------------------------


async def test_lockout_answers_the_same_for_known_and_unknown_emails(
    http: httpx.AsyncClient, user: User
) -> None:
    ghost = User(0, 0, "nobody-here@auth.test", "whatever-password")
    answers: dict[str, list[httpx.Response]] = {"known": [], "unknown": []}
    for label, who in (("known", user), ("unknown", ghost)):
        for _ in range(4):  # the limit is 3 failures per account
            bad = User(who.id, who.tenant_id, who.email, "wrong-password")
            answers[label].append(await sign_in(http, bad))

    for label in answers:
        assert [r.status_code for r in answers[label]] == [401, 401, 401, 429], label
    known, unknown = answers["known"][-1], answers["unknown"][-1]
    assert known.json() == unknown.json()
    assert known.json()["error"]["code"] == "rate_limited"
    assert 0 < int(known.headers["retry-after"]) <= 900
    assert known.headers.keys() == unknown.headers.keys()
    # While locked even the right password is refused, so guessing cannot continue.
    locked = await sign_in(http, user)
    assert locked.status_code == 429


async def test_a_correct_sign_in_clears_the_account_count(
    http: httpx.AsyncClient, user: User
) -> None:
    bad = User(user.id, user.tenant_id, user.email, "wrong-password")
    for _ in range(2):
        await sign_in(http, bad)
    assert (await sign_in(http, user)).status_code == 200

    for _ in range(2):
        assert (await sign_in(http, bad)).status_code == 401


async def test_one_ip_trying_many_accounts_is_throttled(http: httpx.AsyncClient) -> None:
    statuses = []
    for i in range(9):  # 8 failures per IP, one per (unknown) account
        ghost = User(0, 0, f"ghost-{i}@auth.test", "wrong-password")
        statuses.append((await sign_in(http, ghost)).status_code)

    assert statuses == [401] * 8 + [429]


async def test_sign_in_works_when_redis_is_down(db: AsyncEngine, user: User) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    settings = settings_for("fdtest-dead-redis")
    async with http_client(build_app(db, dead, settings)) as http:
        response = await sign_in(http, user)
    await dead.aclose()

    assert response.status_code == 200, response.text
