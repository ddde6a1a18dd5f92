"""The OpenAPI 3.1 document, generated from the same models that validate requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import ErrorDetail
from api.framework import ApiRouter, EndpointSpec, path_param_kinds

_REF = "#/components/schemas/{model}"


class _ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class Error(BaseModel):
    """Every 4xx/5xx answer has this shape."""

    error: _ErrorBody


_ERRORS = {
    "400": "The body is not JSON.",
    "401": "Missing, invalid, expired or revoked token.",
    "403": "Your role may not do this.",
    "404": "Not found in your tenant.",
    "409": "Conflicts with the current state.",
    "413": "Body too large.",
    "422": "A field or parameter is invalid; details name each one.",
    "429": "Rate limited; retry after the Retry-After header.",
}


def build_openapi(
    routers: Sequence[ApiRouter], *, title: str, version: str, extra_paths: dict[str, Any]
) -> dict[str, Any]:
    specs = [spec for router in routers for spec, _ in router.specs]
    models: set[type[BaseModel]] = {Error}
    for spec in specs:
        for model in (spec.body, spec.response):
            if model is not None:
                models.add(model)
    keys = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    keys += [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)]
    refs, schema = models_json_schema(keys, ref_template=_REF)  # type: ignore[arg-type]
    paths: dict[str, Any] = dict(extra_paths)
    for spec in specs:
        paths.setdefault(openapi_path(spec.path), {})[spec.method.lower()] = _operation(spec, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def openapi_path(path: str) -> str:
    """`/settings/{key:str}` as declared → `/settings/{key}` as OpenAPI templates it."""
    return "/".join(
        part.split(":")[0] + "}" if part.startswith("{") and ":" in part else part
        for part in path.split("/")
    )


def _operation(spec: EndpointSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1}
                if kind == "int"
                else {"type": "string"},
            }
            for name, kind in path_param_kinds(spec.path)
        ],
        "responses": {},
    }
    if spec.description:
        op["description"] = spec.description
    if spec.permission is not None:
        op["x-permission"] = spec.permission.value
    if spec.query is not None:
        op["parameters"] += _query_parameters(spec.query)
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    ok: dict[str, Any] = {"description": "OK" if spec.status < 300 else "Done"}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(spec.response, "serialization")]}}
    op["responses"][str(spec.status)] = ok
    error = {"application/json": {"schema": refs[(Error, "serialization")]}}
    for status, text in _ERRORS.items():
        if status == "400" and spec.body is None:
            continue
        op["responses"][status] = {"description": text, "content": error}
    return op


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _query_schema(prop),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is present or absent, never null: drop null branches and null defaults
    (a `default: null` beside `type: string` makes the document invalid)."""
    out = {k: v for k, v in prop.items() if k != "title"}
    if "default" in out and out["default"] is None:
        del out["default"]
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        del out["anyOf"]
        out = {**kept[0], **out} if len(kept) == 1 else {"anyOf": kept, **out}
    return out
