"""Meta Graph API twin: WhatsApp Cloud API, Messenger and Instagram sends, WhatsApp media."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.sandbox.callbacks import CallbackDispatcher
from adapters.sandbox.common import (
    bearer_token,
    next_fault,
    random_token,
    record,
    retry_after_headers,
)
from adapters.sandbox.state import Fault, SandboxState, SentMessage, media_bytes

GraphProvider = Literal["whatsapp", "messenger", "instagram"]

_VERSION = re.compile(r"v\d+(\.\d+)?")
_DIGITS = re.compile(r"\D")
# (HTTP status, code, message, subcode) per fault, from Meta's documented error tables.
_WHATSAPP_FAULTS = {
    "rate_limit": (429, 130429, "(#130429) Rate limit hit", None),
    "server_error": (500, 131000, "(#131000) Something went wrong", None),
}
_MESSENGER_FAULTS = {
    "rate_limit": (429, 613, "(#613) Calls to this api have exceeded the rate limit.", None),
    "server_error": (503, 2, "(#2) Service temporarily unavailable", None),
}
_PERMANENT: dict[int, tuple[str, int | None]] = {
    10: ("(#10) This message is sent outside of allowed window.", 2018278),
    100: ("(#100) No matching user found", 2018001),
    190: ("Error validating access token: Session has expired", 463),
    551: ("(#551) This person isn't available right now.", 1545041),
    131026: ("(#131026) Message Undeliverable.", None),
    131047: ("(#131047) Re-engagement message", None),
    131051: ("(#131051) Unsupported message type", None),
    132000: ("(#132000) Number of parameters does not match the expected number of params", None),
    132001: ("(#132001) Template name does not exist in the translation", None),
    133010: ("(#133010) Phone number not registered", None),
}


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    whatsapp: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Meta's documented error object; WhatsApp adds `error_data.details`."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": message}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = random_token(12)
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def fault_response(fault: Fault) -> JSONResponse:
    whatsapp = fault.provider == "whatsapp"
    if fault.mode == "permanent":
        code = fault.code or (131026 if whatsapp else 551)
        message, subcode = _PERMANENT.get(code, (f"(#{code}) Sandbox permanent error", None))
        return graph_error(400, code, message, subcode=subcode, whatsapp=whatsapp)
    table = _WHATSAPP_FAULTS if whatsapp else _MESSENGER_FAULTS
    status, code, message, subcode = table.get(fault.mode, table["server_error"])
    headers = retry_after_headers(fault) if fault.mode == "rate_limit" else None
    return graph_error(status, code, message, subcode=subcode, whatsapp=whatsapp, headers=headers)


def _unauthorized(whatsapp: bool) -> JSONResponse:
    message = "Invalid OAuth access token - Cannot parse access token"
    return graph_error(401, 190, message, whatsapp=whatsapp)


def _invalid(message: str, *, whatsapp: bool) -> JSONResponse:
    return graph_error(400, 100, message, whatsapp=whatsapp)


def _provider(body: Any, account: str, *, instagram: bool, state: SandboxState) -> GraphProvider:
    if isinstance(body, dict) and body.get("messaging_product") == "whatsapp":
        return "whatsapp"
    if instagram or state.is_instagram_account(account):
        return "instagram"
    return "messenger"


def _whatsapp_send(body: dict[str, Any]) -> tuple[JSONResponse, str | None, str | None]:
    """(response, message id, recipient) for a Cloud API /messages call that passed faults."""
    if body.get("status") == "read" and "message_id" in body:
        return JSONResponse({"success": True}), None, None
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return _invalid("(#100) The parameter to is required.", whatsapp=True), None, None
    if body.get("type") == "template":
        problem = template_problem(body.get("template"))
        if problem is not None:
            return _invalid(problem, whatsapp=True), None, None
    wa_id = _DIGITS.sub("", to) or to
    wamid = "wamid." + random_token(30)
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }
    return JSONResponse(answer), wamid, wa_id


def template_problem(template: Any) -> str | None:
    """What the Cloud API would say about a `type: template` message's `template` object, or
    None when it is well formed: a name, a language code, body parameters of non-empty text."""
    if not isinstance(template, dict):
        return "(#100) The parameter template is required."
    name, language = template.get("name"), template.get("language")
    if not isinstance(name, str) or not name:
        return "(#100) The parameter template['name'] is required."
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        return "(#100) The parameter template['language']['code'] is required."
    components = template.get("components", [])
    if not isinstance(components, list):
        return "(#100) Invalid parameter template['components']."
    for component in components:
        parameters = component.get("parameters", []) if isinstance(component, dict) else None
        if not isinstance(parameters, list):
            return "(#100) Invalid parameter template['components']."
        for parameter in parameters:
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                return "(#100) Invalid parameter: only text parameters are supported."
            text = parameter.get("text")
            if not isinstance(text, str) or not text.strip():
                return "(#100) Invalid parameter: a text parameter needs non-empty text."
    return None


def _messenger_send(body: Any) -> tuple[JSONResponse, str | None, str | None]:
    recipient = body.get("recipient") if isinstance(body, dict) else None
    recipient_id = recipient.get("id") if isinstance(recipient, dict) else None
    if not isinstance(recipient_id, str | int) or recipient_id == "":
        return _invalid("(#100) The parameter recipient is required", whatsapp=False), None, None
    mid = "m_" + random_token(30)
    return (
        JSONResponse({"recipient_id": str(recipient_id), "message_id": mid}),
        mid,
        str(recipient_id),
    )


def graph_routes(state: SandboxState, dispatcher: CallbackDispatcher) -> list[BaseRoute]:
    """Routes for graph.facebook.com (and graph.instagram.com under /instagram)."""

    async def send(request: Request) -> Response:
        version = request.path_params.get("version")
        account = request.path_params["account"]
        instagram = request.url.path.startswith("/instagram/")
        body: Any = None
        try:
            body = await request.json()
        except ValueError:
            body = None
        provider = _provider(body, account, instagram=instagram, state=state)
        whatsapp = provider == "whatsapp"
        fault: Fault | None = None
        message_id: str | None = None
        recipient: str | None = None
        if version is not None and not _VERSION.fullmatch(version):
            response: Response = graph_error(400, 2500, f"Unknown path components: /{version}")
        elif bearer_token(request) is None and not request.query_params.get("access_token"):
            response = _unauthorized(whatsapp)
        elif not isinstance(body, dict):
            response = _invalid("(#100) Invalid parameter", whatsapp=whatsapp)
        elif (fault := await next_fault(state, provider)) is not None:
            response = fault_response(fault)
        elif whatsapp:
            response, message_id, recipient = _whatsapp_send(body)
        else:
            response, message_id, recipient = _messenger_send(body)
        record(
            state,
            request,
            provider=provider,
            account=account,
            json=body,
            status=response.status_code,
            fault=fault,
            message_id=message_id,
        )
        if message_id is not None and recipient is not None:
            dispatcher.schedule(SentMessage(provider, account, message_id, recipient))
        return response

    async def media_info(request: Request) -> Response:
        version = request.path_params["version"]
        media_id = request.path_params["media_id"]
        fault: Fault | None = None
        if not _VERSION.fullmatch(version):
            response: Response = graph_error(400, 2500, f"Unknown path components: /{version}")
        elif bearer_token(request) is None:
            response = _unauthorized(True)
        elif (fault := await next_fault(state, "whatsapp")) is not None:
            response = fault_response(fault)
        else:
            data = media_bytes(media_id)
            response = JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{str(request.base_url).rstrip('/')}/media/{media_id}",
                    "mime_type": "image/jpeg",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": len(data),
                    "id": media_id,
                }
            )
        record(
            state,
            request,
            provider="whatsapp",
            account=None,
            status=response.status_code,
            fault=fault,
        )
        return response

    async def media_download(request: Request) -> Response:
        # Meta's media URLs need the same bearer token; Twilio's (see twilio.py) basic auth.
        if not request.headers.get("authorization"):
            return _unauthorized(True)
        return Response(media_bytes(request.path_params["media_id"]), media_type="image/jpeg")

    return [
        Route("/media/{media_id}", media_download, methods=["GET"]),
        Route("/instagram/{version}/{account}/messages", send, methods=["POST"]),
        Route("/instagram/{account}/messages", send, methods=["POST"]),
        Route("/{version}/{account}/messages", send, methods=["POST"]),
        Route("/{account}/messages", send, methods=["POST"]),
        Route("/{version}/{media_id}", media_info, methods=["GET"]),
    ]
