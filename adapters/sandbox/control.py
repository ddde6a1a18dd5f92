"""Control API under /_sandbox/: inspect recorded traffic, inject faults, register callbacks."""

from __future__ import annotations

import dataclasses
from typing import Any, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.sandbox.state import (
    CallbackProvider,
    CallbackTarget,
    Fault,
    FaultMode,
    Provider,
    RecordedMail,
    SandboxState,
)

_Model = TypeVar("_Model", bound=BaseModel)

# Statuses each provider really reports, and the default sequence sent after a send.
_STATUSES: dict[str, frozenset[str]] = {
    "whatsapp": frozenset({"sent", "delivered", "read", "failed"}),
    "messenger": frozenset({"delivered", "read"}),
    "instagram": frozenset({"delivered", "read"}),
    "twilio": frozenset({"sent", "delivered", "undelivered", "failed", "read"}),
}
_DEFAULT_STATUSES: dict[str, tuple[str, ...]] = {
    "whatsapp": ("delivered", "read"),
    "messenger": ("delivered", "read"),
    "instagram": ("delivered", "read"),
    "twilio": ("sent", "delivered"),
}


class FaultSpec(BaseModel):
    """Body of POST /_sandbox/faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider
    mode: FaultMode
    count: int = Field(default=1, ge=-1)
    retry_after_s: int = Field(default=1, ge=0, le=86_400)
    code: int | None = Field(default=None, ge=1)
    delay_ms: int = Field(default=1000, ge=0, le=600_000)
    migrate_to_chat_id: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.count == 0:
            raise ValueError("count must be -1 (until cleared) or at least 1")
        if self.mode == "migrate" and self.provider != "telegram":
            raise ValueError("mode migrate exists only for provider telegram")
        return self

    def to_fault(self) -> Fault:
        return Fault(**self.model_dump())


class CallbackSpec(BaseModel):
    """Body of POST /_sandbox/callbacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: CallbackProvider
    account: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")
    secret: str = Field(min_length=1)
    statuses: tuple[str, ...] | None = None
    delay_ms: int = Field(default=50, ge=0, le=600_000)
    error_code: int | None = None
    waba_id: str = "102290129340398"
    display_phone_number: str = "15550000000"

    @model_validator(mode="after")
    def _known_statuses(self) -> Self:
        unknown = set(self.statuses or ()) - _STATUSES[self.provider]
        if unknown:
            raise ValueError(f"statuses {sorted(unknown)} are not {self.provider} statuses")
        return self

    def to_target(self) -> CallbackTarget:
        fields = self.model_dump()
        fields["statuses"] = self.statuses or _DEFAULT_STATUSES[self.provider]
        return CallbackTarget(**fields)


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _error(status_code: int, message: str, details: Any = None) -> Response:
    return _json({"error": message, "details": details}, status_code)


def mail_json(mail: RecordedMail) -> dict[str, Any]:
    return {
        "seq": mail.seq,
        "mail_from": mail.mail_from,
        "rcpt_tos": list(mail.rcpt_tos),
        "headers": mail.headers,
        "subject": mail.subject,
        "raw": mail.raw.decode("utf-8", "replace"),
        "time": mail.time,
    }


def target_json(target: CallbackTarget) -> dict[str, Any]:
    """A registered receiver, secret left out."""
    fields = dataclasses.asdict(target)
    fields.pop("secret")
    return fields


async def _parse(request: Request, model: type[_Model]) -> _Model | Response:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        details = orjson.loads(exc.json(include_url=False, include_input=False))
        return _error(422, f"invalid {model.__name__}", details)


def control_routes(state: SandboxState) -> list[BaseRoute]:
    """Routes under /_sandbox/."""

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_requests()
            return Response(status_code=204)
        recorded = state.requests(
            provider=request.query_params.get("provider") or None,
            account=request.query_params.get("account") or None,
        )
        return _json(recorded)

    async def mail(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_mail()
            return Response(status_code=204)
        return _json([mail_json(m) for m in state.mail()])

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_faults(request.query_params.get("provider") or None)
            return Response(status_code=204)
        if request.method == "GET":
            return _json(state.faults())
        spec = await _parse(request, FaultSpec)
        if isinstance(spec, Response):
            return spec
        fault = spec.to_fault()
        state.add_fault(fault)
        return _json(fault, 201)

    async def callbacks(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_callbacks()
            return Response(status_code=204)
        if request.method == "GET":
            return _json([target_json(t) for t in state.callbacks()])
        spec = await _parse(request, CallbackSpec)
        if isinstance(spec, Response):
            return spec
        target = spec.to_target()
        state.register_callback(target)
        return _json(target_json(target), 201)

    async def deliveries(request: Request) -> Response:
        return _json(state.deliveries())

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    return [
        Route("/_sandbox/requests", requests, methods=["GET", "DELETE"]),
        Route("/_sandbox/mail", mail, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/callbacks", callbacks, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/callbacks/deliveries", deliveries, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/health", health, methods=["GET"]),
    ]
