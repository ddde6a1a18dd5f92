"""Helpers every sandbox provider shares: fault taking, body reading, request recording."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from adapters.sandbox.state import (
    Fault,
    FormBody,
    Provider,
    RecordedRequest,
    SandboxState,
    utc_now,
)


def random_hex(n_bytes: int) -> str:
    return secrets.token_hex(n_bytes)


def random_token(n_bytes: int) -> str:
    return secrets.token_urlsafe(n_bytes)


async def next_fault(state: SandboxState, provider: Provider) -> Fault | None:
    """The fault that makes this request fail, if any; a `slow` fault only delays it."""
    fault = state.take_fault(provider)
    if fault is not None and fault.mode == "slow":
        await asyncio.sleep(fault.delay_ms / 1000)
        return None
    return fault


def retry_after_headers(fault: Fault) -> dict[str, str]:
    """HTTP Retry-After, which clients honour generically; providers' own fields come too."""
    return {"Retry-After": str(fault.retry_after_s)}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _add(form: FormBody, key: str, value: str) -> None:
    current = form.get(key)
    if current is None:
        form[key] = value
    elif isinstance(current, list):
        current.append(value)
    else:
        form[key] = [current, value]


async def read_body(request: Request) -> tuple[Any, FormBody | None]:
    """The request's JSON document or its form fields (uploads summarised, never stored).

    Returns (json, None) for JSON bodies (json is None when the body is not valid JSON)
    and (None, form) for urlencoded or multipart bodies and for bodiless requests.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            return orjson.loads(await request.body()), None
        except orjson.JSONDecodeError:
            return None, None
    form: FormBody = {}
    if content_type == "multipart/form-data":
        async with request.form() as parsed:
            for key, value in parsed.multi_items():
                if isinstance(value, UploadFile):
                    size = len(await value.read())
                    _add(form, key, f"<upload {value.filename or key}: {size} bytes>")
                else:
                    _add(form, key, value)
        return None, form
    body = await request.body()
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        _add(form, key, value)
    return None, form


def first(form: FormBody | None, key: str) -> str | None:
    """A form field's (first) value."""
    if form is None:
        return None
    value = form.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def record(
    state: SandboxState,
    request: Request,
    *,
    provider: Provider,
    account: str | None,
    json: Any = None,
    form: FormBody | None = None,
    status: int,
    fault: Fault | None = None,
    message_id: str | None = None,
    path: str | None = None,
) -> None:
    """Remember one provider API call; `path` overrides the URL path to hide secrets in it."""
    state.record_request(
        RecordedRequest(
            seq=0,
            method=request.method,
            path=path if path is not None else request.url.path,
            provider=provider,
            account=account,
            json=json,
            form=form,
            status=status,
            fault=fault.mode if fault is not None else None,
            message_id=message_id,
            time=utc_now(),
        )
    )
