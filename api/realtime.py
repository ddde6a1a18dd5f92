"""WebSocket `/api/v1/ws`: the caller's tenant events, live and replayable from its Redis Stream.

One reader task per connection (XREAD BLOCK on the tenant's Stream, from the position the
connection started at), so a slow client only slows itself. Protocol, server → client:
`{"type": "ready"}` once subscribed, `{"type": "resync"}` when the requested resume point is
gone (refetch state over REST), `{"type": "ping", "at": …}` every HEARTBEAT_S, and each event
as `{"id": stream id, "event_id": outbox id, "topic", "data", "at"}`. Close codes: 4401
(missing, invalid, expired or revoked token), 4403 (an API client without a ticket-read
grant), 4400 (malformed request), 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.auth import MAX_TOKEN_CHARS, Principal
from api.deps import ApiDeps
from api.errors import ApiError, error_response
from api.realtime_access import TokenCheck, Visibility, check_token
from engine.errors import DatabaseUnavailableError
from engine.metrics import counts_connections
from pipelines.deliver import realtime_stream

log = logging.getLogger(__name__)

HEARTBEAT_S = 20.0  # read at call time, so tests may shorten it
AUTH_TIMEOUT_S = 5.0
READ_BLOCK_MS = 5_000
READ_BATCH = 100
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_LATER = 1013
_STREAM_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?$")

StreamId = Annotated[str, StringConstraints(pattern=_STREAM_ID.pattern)]


class RealtimeDeps(ApiDeps, Protocol):
    @property
    def redis(self) -> aioredis.Redis: ...


class AuthMessage(BaseModel):
    """The first client message when the token is not in the query string."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_CHARS)]
    last_event_id: StreamId | None = None


class _Closed(Exception):
    """The connection was closed (by us with `code`, or by the client with None)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


@counts_connections("realtime")
async def realtime_feed(websocket: WebSocket) -> None:
    """Authenticate, then stream the tenant's events this user may see until either side stops."""
    await websocket.accept()
    deps: RealtimeDeps = websocket.app.state.deps
    try:
        auth = await _hello(websocket)
        check = await check_token(deps, auth.token)
        if check.principal is None:
            raise _Closed(CLOSE_UNAUTHORIZED, "invalid, expired or revoked token")
        if check.forbidden:
            raise _Closed(CLOSE_FORBIDDEN, "this API client may not read tickets")
        stream = realtime_stream(deps.settings.QUEUE_PREFIX, check.principal.tenant_id)
        start, resync = await _start(deps.redis, stream, auth.last_event_id)
        feed = _Feed(websocket, deps, check, stream, start)
        if resync:
            await feed.send({"type": "resync"})
        await feed.send({"type": "ready"})
        await feed.run()
    except _Closed as closed:
        if closed.code is not None:
            await _close(websocket, closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    except (DatabaseUnavailableError, RedisError):  # the world's fault: the client reconnects
        log.warning("realtime feed interrupted", extra={"path": websocket.url.path})
        await _close(websocket, CLOSE_TRY_LATER, "service temporarily unavailable")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError):  # the client went away first
        await websocket.close(code, reason)


async def _hello(websocket: WebSocket) -> AuthMessage:
    """Token and resume point from the query string, or else from the first message (5 s)."""
    params = websocket.query_params
    last_event_id = params.get("last_event_id")
    token = params.get("token")
    try:
        if token is not None:
            return AuthMessage(type="auth", token=token, last_event_id=last_event_id)
    except ValidationError:
        raise _Closed(CLOSE_BAD_REQUEST, "invalid token or last_event_id") from None
    try:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise _Closed(CLOSE_UNAUTHORIZED, "authenticate within 5 seconds") from None
    if message["type"] == "websocket.disconnect":
        raise _Closed(None)
    try:
        auth = AuthMessage.model_validate_json(message.get("text") or b"")
    except ValidationError:
        raise _Closed(CLOSE_BAD_REQUEST, 'expected {"type": "auth", "token": ...}') from None
    if last_event_id is None or auth.last_event_id is not None:
        return auth
    try:  # the resume point of the query string, checked like the message's own
        return AuthMessage(type="auth", token=auth.token, last_event_id=last_event_id)
    except ValidationError:
        raise _Closed(CLOSE_BAD_REQUEST, "invalid token or last_event_id") from None


async def _start(redis: aioredis.Redis, stream: str, last_event_id: str | None) -> tuple[str, bool]:
    """Where to read from, and whether the client must resync first.

    Without a resume point: the Stream's current end. With one: that id, unless it is older
    than the backlog (trimmed away) or newer than anything written (not from this Stream).
    """
    newest: Any = await redis.xrevrange(stream, count=1)
    tip = _text(newest[0][0]) if newest else "0-0"
    if last_event_id is None:
        return tip, False
    oldest: Any = await redis.xrange(stream, count=1)
    wanted = _parse_id(last_event_id)
    if not oldest or wanted < _parse_id(_text(oldest[0][0])) or wanted > _parse_id(tip):
        return tip, True
    return f"{wanted[0]}-{wanted[1]}", False


class _Feed:
    """One authenticated connection: a reader, a heartbeat and a listener for the client."""

    def __init__(
        self,
        websocket: WebSocket,
        deps: RealtimeDeps,
        check: TokenCheck,
        stream: str,
        start: str,
    ) -> None:
        assert check.principal is not None
        self.websocket = websocket
        self.deps = deps
        self.check = check
        self.principal: Principal = check.principal
        self.stream = stream
        self.position = start
        self.visibility = Visibility(deps.db, check.principal)
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.lock:  # reader and heartbeat share one socket
            await self.websocket.send_text(json.dumps(frame, separators=(",", ":")))

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._listen()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # re-raise _Closed / disconnects / outages to realtime_feed

    async def _read(self) -> None:
        while True:
            reply: Any = await self.deps.redis.xread(
                {self.stream: self.position}, count=READ_BATCH, block=READ_BLOCK_MS
            )
            for _, entries in reply or ():
                for raw_id, fields in entries:
                    self.position = _text(raw_id)
                    frame = _frame(self.position, fields)
                    if frame is not None and await self.visibility.allows(
                        frame["topic"], frame["data"]
                    ):
                        await self.send(frame)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if not await self.check.still_valid(self.deps):
                raise _Closed(CLOSE_UNAUTHORIZED, "token expired or revoked")
            await self.send({"type": "ping", "at": datetime.now(UTC).isoformat()})

    async def _listen(self) -> None:
        """Drain client frames (they carry nothing we act on) until the client leaves."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise _Closed(None)


def _frame(stream_id: str, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    try:
        return {
            "id": stream_id,
            "event_id": int(fields[b"outbox_id"]),
            "topic": fields[b"topic"].decode(),
            "data": json.loads(fields[b"data"]),
            "at": fields[b"at"].decode(),
        }
    except (KeyError, ValueError, UnicodeDecodeError):  # not written by publish_outbox
        log.warning("unreadable stream entry skipped", extra={"stream_id": stream_id})
        return None


async def upgrade_required(_: Request) -> Response:
    """A plain GET of the WebSocket URL: say how to use it instead of a bare 404."""
    response = error_response(
        ApiError(426, "upgrade_required", "This endpoint speaks WebSocket only.")
    )
    response.headers["Upgrade"] = "websocket"
    return response


routes: list[BaseRoute] = [
    WebSocketRoute("/api/v1/ws", realtime_feed, name="realtime_ws"),
    Route("/api/v1/ws", upgrade_required, methods=["GET"], name="realtime_ws_http"),
]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/ws": {
        "get": {
            "operationId": "realtime_ws",
            "summary": "Realtime events (WebSocket)",
            "tags": ["realtime"],
            "description": (__doc__ or "").strip()
            + "\n\nAuthenticate with `?token=<access token>` or a first message "
            '`{"type": "auth", "token": …, "last_event_id": …}` within 5 seconds. Resume with '
            "`?last_event_id=<stream id>`. A plain HTTP GET answers 426.",
            "security": [],
            "parameters": [
                {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
                {
                    "name": "last_event_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": _STREAM_ID.pattern},
                },
            ],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol."},
                "426": {"description": "Not a WebSocket upgrade request."},
            },
        }
    }
}
