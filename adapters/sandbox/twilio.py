"""Twilio Programmable Messaging twin: the Messages resource, MMS media, REST error bodies."""

from __future__ import annotations

import base64
import binascii
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.sandbox.callbacks import CallbackDispatcher
from adapters.sandbox.common import (
    first,
    next_fault,
    random_hex,
    read_body,
    record,
    retry_after_headers,
)
from adapters.sandbox.state import Fault, FormBody, SandboxState, SentMessage, media_bytes, utc_now

_API_VERSION = "2010-04-01"
# Messages from Twilio's error dictionary (https://www.twilio.com/docs/errors/<code>).
_PERMANENT = {
    20003: (401, "Authenticate"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS."),
    21614: (400, "'To' number is not a valid mobile number"),
}


def twilio_error(
    status: int, code: int, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Twilio's REST error body."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def fault_response(fault: Fault) -> JSONResponse:
    if fault.mode == "rate_limit":
        return twilio_error(429, 20429, "Too Many Requests", headers=retry_after_headers(fault))
    if fault.mode == "permanent":
        code = fault.code or 21211
        status, message = _PERMANENT.get(code, (400, f"Sandbox permanent error {code}"))
        return twilio_error(status, code, message)
    return twilio_error(500, 20500, "Internal Server Error")


def _authenticated(request: Request, account_sid: str) -> bool:
    """Basic auth as the account itself or one of its API keys (SK…), with some secret."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(password) and (username == account_sid or username.startswith("SK"))


def _validate(form: FormBody) -> JSONResponse | None:
    if not first(form, "To"):
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not first(form, "From") and not first(form, "MessagingServiceSid"):
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not first(form, "Body") and not first(form, "MediaUrl"):
        return twilio_error(400, 21602, "Message body is required.")
    return None


def _message_resource(account_sid: str, sid: str, form: FormBody) -> dict[str, Any]:
    now = format_datetime(utc_now(), usegmt=True)
    media = form.get("MediaUrl") or []
    uri = f"/{_API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": _API_VERSION,
        "body": first(form, "Body") or "",
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": first(form, "From"),
        "messaging_service_sid": first(form, "MessagingServiceSid"),
        "num_media": str(len(media) if isinstance(media, list) else 1),
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": first(form, "To"),
        "uri": f"{uri}.json",
    }


def twilio_routes(state: SandboxState, dispatcher: CallbackDispatcher) -> list[BaseRoute]:
    """Routes for api.twilio.com."""

    async def create_message(request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        _, form = await read_body(request)
        form = form or {}
        account = first(form, "From") or first(form, "MessagingServiceSid")
        fault: Fault | None = None
        sid: str | None = None
        if not _authenticated(request, account_sid):
            response = twilio_error(401, 20003, "Authenticate")
        elif (invalid := _validate(form)) is not None:
            response = invalid
        elif (fault := await next_fault(state, "twilio")) is not None:
            response = fault_response(fault)
        else:
            sid = "SM" + random_hex(16)
            response = JSONResponse(_message_resource(account_sid, sid, form), status_code=201)
        record(
            state,
            request,
            provider="twilio",
            account=account,
            form=form,
            status=response.status_code,
            fault=fault,
            message_id=sid,
        )
        if sid is not None and account is not None:
            recipient = first(form, "To") or ""
            dispatcher.schedule(
                SentMessage("twilio", account, sid, recipient, account_sid=account_sid)
            )
        return response

    async def media(request: Request) -> Response:
        # Real Twilio redirects to short-lived storage; serving the bytes directly is enough.
        return Response(media_bytes(request.path_params["media_sid"]), media_type="image/jpeg")

    base = f"/{_API_VERSION}/Accounts/{{account_sid}}"
    return [
        Route(f"{base}/Messages.json", create_message, methods=["POST"]),
        Route(f"{base}/Messages/{{message_sid}}/Media/{{media_sid}}", media, methods=["GET"]),
    ]
