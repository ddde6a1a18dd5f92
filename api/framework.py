"""Declarative endpoints: authentication, RBAC, validation, errors and OpenAPI in one place.

A resource module makes an `ApiRouter`, declares each endpoint with its permission and its
pydantic models, and writes a handler that receives a validated `Call`:

    router = ApiRouter("tags")

    @router.post("/api/v1/tags", Permission.TAGS_MANAGE, body=TagIn, response=TagOut,
                 status=201, summary="Create a tag")
    async def create_tag(call: Call[TagIn, NoQuery]) -> TagOut: ...

The same models validate requests and generate the OpenAPI document (api/openapi.py), so
the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import Principal, require_principal
from api.bodies import read_capped
from api.deps import ApiDeps, get_deps
from api.errors import ApiError, ErrorDetail, conflict_on, invalid_request
from api.rbac import Permission, permits
from engine.db import async_tenant_tx

MAX_BIGINT = 9_223_372_036_854_775_807
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[B, Q]):
    """One validated request, as a handler sees it."""

    request: Request
    deps: ApiDeps
    principal: Principal
    body: B
    query: Q
    ids: Mapping[str, int]
    # `{name:str}` path parameters, as sent (URL-decoded); `ids` holds the integer ones.
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def tenant_id(self) -> int:
        return self.principal.tenant_id

    def id(self, name: str = "id") -> int:
        return self.ids[name]

    @asynccontextmanager
    async def tx(
        self, conflicts: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction that can see only the caller's tenant (row-level security).

        `conflicts` maps unique constraints to the message of a 409 for a write that runs into
        one, at any statement or at commit; any other integrity error is a bug and propagates.
        """
        try:
            async with async_tenant_tx(self.deps.db, self.principal.tenant_id) as conn:
                yield conn
        except IntegrityError as exc:
            if conflicts is None:
                raise
            raise conflict_on(exc, conflicts) from None


Handler = Callable[[Call[Any, Any]], Awaitable[BaseModel | Response | None]]


@dataclass(frozen=True)
class EndpointSpec:
    """What OpenAPI and the RBAC matrix know about one endpoint."""

    method: str
    path: str
    name: str
    summary: str
    permission: Permission | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    tag: str
    max_body_bytes: int
    description: str = ""


@dataclass
class ApiRouter:
    """The endpoints of one resource."""

    tag: str
    specs: list[tuple[EndpointSpec, Handler]] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        permission: Permission | None,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            for name, kind in path_param_kinds(path):
                if kind not in ("int", "str"):
                    raise ValueError(f"{path}: path parameter {name!r} must be :int or :str")
            spec = EndpointSpec(
                method=method,
                path=path,
                name=handler.__name__,
                summary=summary,
                permission=permission,
                body=body,
                query=query,
                response=response,
                status=status,
                tag=self.tag,
                max_body_bytes=max_body_bytes,
                description=(handler.__doc__ or "").strip(),
            )
            self.specs.append((spec, handler))
            return handler

        return decorate

    def get(
        self, path: str, permission: Permission | None, **kw: Any
    ) -> Callable[[Handler], Handler]:
        return self.route("GET", path, permission, **kw)

    def post(
        self, path: str, permission: Permission | None, **kw: Any
    ) -> Callable[[Handler], Handler]:
        return self.route("POST", path, permission, **kw)

    def patch(
        self, path: str, permission: Permission | None, **kw: Any
    ) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, permission, **kw)

    def put(
        self, path: str, permission: Permission | None, **kw: Any
    ) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, permission, **kw)

    def delete(
        self, path: str, permission: Permission | None, **kw: Any
    ) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, permission, **kw)

    def routes(self) -> list[Route]:
        return [
            Route(
                _starlette_path(spec.path),
                _wrap(spec, handler),
                methods=[spec.method],
                name=spec.name,
            )
            for spec, handler in self.specs
        ]


def _starlette_path(path: str) -> str:
    """`/tickets/{id}` in the spec; `/tickets/{id:int}` for Starlette's router."""
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}") and ":" not in part:
            out.append(part[:-1] + ":int}")
        else:
            out.append(part)
    return "/".join(out)


def path_params(path: str) -> list[str]:
    return [name for name, _ in path_param_kinds(path)]


def path_param_kinds(path: str) -> list[tuple[str, str]]:
    """(name, "int" | "str") per path parameter; a bare `{name}` is an int id."""
    kinds: list[tuple[str, str]] = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name, _, kind = part[1:-1].partition(":")
            kinds.append((name, kind or "int"))
    return kinds


def _wrap(spec: EndpointSpec, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        principal = await require_principal(request, allow_clients=True)
        if not permits(principal, spec.permission):
            raise ApiError(403, "forbidden", "Your role may not do this.")
        ids = _ids(request, spec)
        query = _query(request, spec.query or NoQuery)
        body = await _body(request, spec) if spec.body is not None else NoBody()
        call: Call[Any, Any] = Call(
            request=request,
            deps=get_deps(request),
            principal=principal,
            body=body,
            query=query,
            ids=ids,
            params=_params(request, spec),
        )
        result = await handler(call)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204 if spec.status == 200 else spec.status)
        return Response(
            result.model_dump_json(), status_code=spec.status, media_type="application/json"
        )

    endpoint.__name__ = spec.name
    return endpoint


def _ids(request: Request, spec: EndpointSpec) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name, kind in path_param_kinds(spec.path):
        if kind != "int":
            continue
        value = request.path_params[name]
        if not isinstance(value, int) or not 1 <= value <= MAX_BIGINT:
            raise ApiError(404, "not_found", "Not found.")
        ids[name] = value
    return ids


def _params(request: Request, spec: EndpointSpec) -> dict[str, str]:
    return {
        name: str(request.path_params[name])
        for name, kind in path_param_kinds(spec.path)
        if kind == "str"
    }


def _query(request: Request, model: type[Q]) -> Q:
    values: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in values:
            detail = ErrorDetail(field=name, message="given more than once")
            raise ApiError(
                422, "invalid_request", f"Invalid query parameter: {name}.", details=(detail,)
            )
        values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid_request(exc, where="query parameter") from None


async def _body(request: Request, spec: EndpointSpec) -> BaseModel:
    assert spec.body is not None
    limit = spec.max_body_bytes
    too_large = ApiError(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
    raw = await read_capped(request, limit=limit, too_large=too_large)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested or a number too deep
        raise ApiError(400, "invalid_json", "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        return spec.body.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc, where="request body") from None


def not_found(subject: str) -> ApiError:
    return ApiError(404, "not_found", f"{subject} not found.")


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)
