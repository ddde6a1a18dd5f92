"""Readiness: is every dependency of the web process reachable, and is the schema current?"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.deps import ApiDeps
from engine.db import SCHEMA_VERSION

# A dead dependency must not hang the probe: every check gives up after this long.
CHECK_TIMEOUT_S = 2.0
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_AMQP_METHOD_FRAME = b"\x01"


class NotReadyError(Exception):
    """A dependency answered, but not as it must (schema too old, not an AMQP server…)."""


class ReadinessDeps(ApiDeps, Protocol):
    @property
    def redis(self) -> aioredis.Redis: ...


async def _database(db: AsyncEngine) -> dict[str, object]:
    async with db.connect() as conn:
        version = (
            await conn.execute(text("SELECT max(version) FROM schema_migrations"))
        ).scalar_one()
    if version is None or int(version) < SCHEMA_VERSION:
        raise NotReadyError(
            f"schema version {version} is older than {SCHEMA_VERSION}: run `flowdesk db init`"
        )
    return {"schema_version": int(version)}


async def _redis(client: aioredis.Redis) -> dict[str, object]:
    await client.ping()
    return {}


async def _amqp(url: str) -> dict[str, object]:
    """Open a connection and read the server's first frame (Connection.Start), then hang up."""
    parts = urlsplit(url)
    secure = parts.scheme == "amqps"
    reader, writer = await asyncio.open_connection(
        parts.hostname or "localhost",
        parts.port or (5671 if secure else 5672),
        ssl=ssl.create_default_context() if secure else None,
    )
    try:
        writer.write(_AMQP_HEADER)
        await writer.drain()
        first = await reader.read(1)
    finally:
        writer.close()
    if first != _AMQP_METHOD_FRAME:
        raise NotReadyError("the broker did not answer as an AMQP 0-9-1 server")
    return {"kind": "rabbitmq"}


async def _broker(deps: ReadinessDeps) -> dict[str, object]:
    if deps.settings.AMQP_URL:
        return await _amqp(deps.settings.AMQP_URL)
    await deps.redis.ping()  # the Redis broker lives on the same server
    return {"kind": "redis"}


async def _run(check: Callable[[], Awaitable[dict[str, object]]]) -> dict[str, object]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return {"ok": True, **await check()}
    except TimeoutError:
        return {"ok": False, "reason": f"no answer within {CHECK_TIMEOUT_S:g}s"}
    except NotReadyError as exc:
        return {"ok": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as a reason
        detail = (str(exc).strip().splitlines() or [""])[0][:160]
        return {"ok": False, "reason": f"{type(exc).__name__}: {detail}".rstrip(": ")}


async def readyz(request: Request) -> Response:
    """200 when the database (with a current schema), Redis and the broker answer; else 503
    naming what failed. Each check has its own short timeout and they run concurrently."""
    deps: ReadinessDeps = request.app.state.deps
    names = ("database", "redis", "broker")
    results = await asyncio.gather(
        _run(lambda: _database(deps.db)),
        _run(lambda: _redis(deps.redis)),
        _run(lambda: _broker(deps)),
    )
    checks = dict(zip(names, results, strict=True))
    ready = all(result["ok"] for result in results)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
