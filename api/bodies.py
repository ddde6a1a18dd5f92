"""Reading a request body within a size bound (and, for webhooks, a time bound)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from api.errors import ApiError


async def read_capped(
    request: Request, *, limit: int, too_large: ApiError, timeout_s: float | None = None
) -> bytes:
    """The whole body, raising `too_large` past `limit` bytes (declared or streamed) and, with
    `timeout_s`, 408 when it has not all arrived in time (a slow-loris client cannot hold a
    connection and its buffer open)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    if timeout_s is None:
        return await _read(request, limit, too_large)
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(request, limit, too_large)
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"body not received within {timeout_s:g} seconds"
        ) from None


async def _read(request: Request, limit: int, too_large: ApiError) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
