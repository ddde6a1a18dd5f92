"""API error type and the Starlette handlers that render `{"error": {code, message, details}}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """One offending field or parameter, by name; never echoes the value sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    message: str


class _ErrorBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    message: str
    details: tuple[ErrorDetail, ...]


class _ErrorEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    error: _ErrorBody


class ApiError(Exception):
    """A failure the client should see as `status` with a stable machine-readable `code`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: tuple[ErrorDetail, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def validation_details(exc: ValidationError) -> tuple[ErrorDetail, ...]:
    """Field name and reason for each error; the input value is left out (it may be secret)."""
    return tuple(
        ErrorDetail(field=".".join(str(part) for part in err["loc"]) or "body", message=err["msg"])
        for err in exc.errors(include_url=False, include_input=False)
    )


def invalid_request(exc: ValidationError, *, where: str) -> ApiError:
    """A 422 naming every bad field of the request's `where` (e.g. "query parameter")."""
    details = validation_details(exc)
    names = ", ".join(dict.fromkeys(d.field for d in details))
    return ApiError(422, "invalid_request", f"Invalid {where}: {names}.", details=details)


def invalid_field(field: str, message: str, *, where: str = "request body") -> ApiError:
    """A 422 naming one field of the request's `where`, for checks a model cannot make alone
    (rows that must exist, rules across fields), shaped like `invalid_request`."""
    detail = ErrorDetail(field=field, message=message)
    return ApiError(422, "invalid_request", f"Invalid {where}: {field}.", details=(detail,))


def error_response(error: ApiError) -> Response:
    """The JSON response for `error`."""
    body = _ErrorEnvelope(
        error=_ErrorBody(code=error.code, message=error.message, details=error.details)
    )
    return Response(
        body.model_dump_json(),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette handler for ApiError."""
    if not isinstance(exc, ApiError):  # registered for ApiError only; be safe anyway
        raise exc
    if exc.status >= 500:
        log.error("api error", extra={"path": request.url.path, "code": exc.code})
    return error_response(exc)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette handler for a pydantic ValidationError that escaped a route: 422 with fields.

    Routes convert request validation themselves (`invalid_request`); this is the backstop.
    """
    if not isinstance(exc, ValidationError):
        raise exc
    log.info("unconverted validation error", extra={"path": request.url.path})
    return error_response(invalid_request(exc, where="request"))


def constraint_of(exc: IntegrityError) -> str:
    """The name of the constraint or unique index an INSERT/UPDATE ran into ('' if unknown)."""
    diag = getattr(exc.orig, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


def conflict_on(exc: IntegrityError, messages: Mapping[str, str]) -> ApiError:
    """409 for a known unique constraint; anything else is a bug and is raised as is."""
    message = messages.get(constraint_of(exc))
    if message is None:
        raise exc
    return ApiError(409, "conflict", message)
