"""The ops API (`/ops/...`, JSON): queues, workers, dead letters, inbox and scheduler.

For a super user's access token or the ops token (OPS_TOKEN); see api/ops_access.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import ops_service as ops
from api.auth_support import read_body
from api.errors import ApiError
from api.framework import _query  # one parser for every API's query strings
from api.ops_access import Operator, require_operator
from api.ops_service import Selection
from engine.store.dead_letters import DeadLetter, payload_of

MAX_BODY_BYTES = 8 * 1024
Handler = Callable[[Request, Operator], Awaitable[Response]]


class DeadLetterQuery(Selection):
    cursor: int | None = Field(default=None, ge=1, le=2**63 - 1)
    limit: int = Field(default=50, ge=1, le=500)


class BulkBody(Selection):
    all: bool = False


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    tenant_id: int | None
    actor: str
    queue: str
    message_id: str | None
    error_class: str
    error_message: str
    attempts: int
    created_at: str
    requeued_at: str | None
    requeue_count: int


def _summary(d: DeadLetter) -> dict[str, object]:
    data = d.model_dump(mode="json", exclude={"payload_json", "traceback"})
    return DeadLetterOut.model_validate(data).model_dump(mode="json")


def _json(data: object, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _id(request: Request) -> int:
    value = request.path_params["id"]
    if not 1 <= value <= 2**63 - 1:
        raise ApiError(404, "not_found", "Dead letter not found.")
    return int(value)


async def get_queues(request: Request, _: Operator) -> Response:
    return _json(json.loads((await ops.queues(ops.ops_deps(request))).model_dump_json()))


async def get_workers(request: Request, _: Operator) -> Response:
    beats = await ops.workers(ops.ops_deps(request))
    return _json({"workers": [b.model_dump(mode="json") for b in beats]})


async def list_dead_letters(request: Request, _: Operator) -> Response:
    q = _query(request, DeadLetterQuery)
    found = await ops.page(ops.ops_deps(request), q.to_filter(), limit=q.limit, cursor=q.cursor)
    return _json(
        {
            "items": [_summary(d) for d in found.items],
            "next_cursor": None if found.next_cursor is None else str(found.next_cursor),
        }
    )


async def get_dead_letter(request: Request, _: Operator) -> Response:
    d = await ops.one(ops.ops_deps(request), _id(request))
    return _json({**_summary(d), "payload": payload_of(d), "traceback": d.traceback})


async def requeue_one(request: Request, who: Operator) -> Response:
    dead_letter_id = _id(request)
    await ops.requeue_one(ops.ops_deps(request), dead_letter_id, who=who.name)
    return _json({"requeued": [dead_letter_id]})


async def requeue_many(request: Request, who: Operator) -> Response:
    body = await read_body(request, BulkBody, limit=MAX_BODY_BYTES)
    f = ops.require_selection(body, everything=body.all)
    done = await ops.requeue(ops.ops_deps(request), f, who=who.name)
    return _json({"requeued": done, "count": len(done)})


async def purge(request: Request, who: Operator) -> Response:
    body = await read_body(request, BulkBody, limit=MAX_BODY_BYTES)
    f = ops.require_selection(body, everything=body.all)
    return _json({"purged": await ops.purge(ops.ops_deps(request), f, who=who.name)})


async def get_inbox(request: Request, _: Operator) -> Response:
    status = await ops.inbox(ops.ops_deps(request))
    return _json(json.loads(status.model_dump_json()))


async def get_scheduler(request: Request, _: Operator) -> Response:
    status = await ops.scheduler(ops.ops_deps(request))
    return _json(json.loads(status.model_dump_json()))


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, await require_operator(request))

    endpoint.__name__ = f"ops_{handler.__name__}"
    return endpoint


def _route(path: str, handler: Handler, method: str = "GET") -> Route:
    return Route(path, _guarded(handler), methods=[method])


routes: list[Route] = [
    _route("/ops/queues", get_queues),
    _route("/ops/workers", get_workers),
    _route("/ops/dead-letters", list_dead_letters),
    _route("/ops/dead-letters/requeue", requeue_many, "POST"),
    _route("/ops/dead-letters/purge", purge, "POST"),
    _route("/ops/dead-letters/{id:int}", get_dead_letter),
    _route("/ops/dead-letters/{id:int}/requeue", requeue_one, "POST"),
    _route("/ops/inbox", get_inbox),
    _route("/ops/scheduler", get_scheduler),
]
