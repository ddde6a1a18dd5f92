"""Telegram Bot API twin: send* methods, getFile and file downloads, Bot API error bodies."""

from __future__ import annotations

import mimetypes
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.sandbox.common import (
    first,
    next_fault,
    random_token,
    read_body,
    record,
    retry_after_headers,
)
from adapters.sandbox.state import Fault, SandboxState, media_bytes

_TOKEN = re.compile(r"(\d+):[A-Za-z0-9_-]+")
_NUMERIC = re.compile(r"-?\d+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Method → the field carrying its media (None: text).
_SEND_METHODS: dict[str, str | None] = {
    "sendMessage": None,
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendVoice": "voice",
    "sendDocument": "document",
    "sendSticker": "sticker",
}
# Methods that change a message the bot sent → the field carrying the new content.
_CHANGE_METHODS: dict[str, str | None] = {
    "editMessageText": "text",
    "editMessageCaption": "caption",
    "deleteMessage": None,
}
_PERMANENT = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
}
_DEFAULT_MIGRATE_TO = -1001234567890


def bot_error(
    code: int,
    description: str,
    *,
    parameters: dict[str, int] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The Bot API's failure body; error_code mirrors the HTTP status."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code, headers=headers)


def fault_response(fault: Fault) -> JSONResponse:
    if fault.mode == "rate_limit":
        seconds = fault.retry_after_s
        return bot_error(
            429,
            f"Too Many Requests: retry after {seconds}",
            parameters={"retry_after": seconds},
            headers=retry_after_headers(fault),
        )
    if fault.mode == "migrate":
        new_chat = fault.migrate_to_chat_id or _DEFAULT_MIGRATE_TO
        description = "Bad Request: group chat was upgraded to a supergroup chat"
        return bot_error(400, description, parameters={"migrate_to_chat_id": new_chat})
    if fault.mode == "permanent":
        code = fault.code or 403
        return bot_error(code, _PERMANENT.get(code, f"Error {code}: sandbox permanent error"))
    return bot_error(500, "Internal Server Error")


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):
        return {"id": -1001000000001, "type": "channel", "username": chat_id.lstrip("@")}
    if chat_id > 0:
        return {"id": chat_id, "type": "private"}
    return {"id": chat_id, "type": "supergroup" if str(chat_id).startswith("-100") else "group"}


def _media_object(field: str) -> Any:
    file = {"file_id": random_token(24), "file_unique_id": random_token(8), "file_size": 1024}
    if field == "photo":
        return [{**file, "width": 90, "height": 90}, {**file, "width": 320, "height": 320}]
    return file


def _params(json: Any, form: dict[str, Any] | None, query: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = dict(query)
    if isinstance(json, dict):
        params.update(json)
    elif form:
        params.update({key: first(form, key) for key in form})
    return params


def _chat_id(value: Any) -> int | str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        return int(value) if _NUMERIC.fullmatch(value) else value
    return None


def telegram_routes(state: SandboxState) -> list[BaseRoute]:
    """Routes for api.telegram.org."""

    def _send(bot_id: str, method: str, params: dict[str, Any]) -> tuple[JSONResponse, str | None]:
        """The answer and, on success, our `chat:message` key for the sent message."""
        chat_id = _chat_id(params.get("chat_id"))
        if chat_id is None:
            return bot_error(400, "Bad Request: chat_id is empty"), None
        field = _SEND_METHODS[method]
        message: dict[str, Any] = {
            "message_id": state.next_telegram_message_id(bot_id, str(chat_id)),
            "from": {"id": int(bot_id), "is_bot": True, "first_name": "Sandbox Bot"},
            "chat": _chat(chat_id),
            "date": int(time.time()),
        }
        if field is None:
            if not params.get("text"):
                return bot_error(400, "Bad Request: message text is empty"), None
            message["text"] = params["text"]
        else:
            if not params.get(field):
                return bot_error(400, f"Bad Request: there is no {field} in the request"), None
            message[field] = _media_object(field)
            if params.get("caption"):
                message["caption"] = params["caption"]
        return _ok(message), f"{message['chat']['id']}:{message['message_id']}"

    def _change(bot_id: str, method: str, params: dict[str, Any]) -> JSONResponse:
        """Edit or delete a message this bot sent, with Telegram's answers for a wrong id."""
        chat_id = _chat_id(params.get("chat_id"))
        message_id = params.get("message_id")
        if chat_id is None:
            return bot_error(400, "Bad Request: chat_id is empty")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            return bot_error(400, "Bad Request: message_id is empty")
        if not state.telegram_message_exists(bot_id, str(chat_id), message_id):
            verb = "delete" if method == "deleteMessage" else "edit"
            return bot_error(400, f"Bad Request: message to {verb} not found")
        field = _CHANGE_METHODS[method]
        if field is None:
            state.delete_telegram_message(bot_id, str(chat_id), message_id)
            return _ok(True)
        if not params.get(field):
            return bot_error(400, f"Bad Request: {field} is empty")
        edited = {"message_id": message_id, "chat": _chat(chat_id), field: params[field]}
        return _ok({**edited, "date": int(time.time()), "edit_date": int(time.time())})

    def _get_file(params: dict[str, Any]) -> JSONResponse:
        file_id = params.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            return bot_error(400, "Bad Request: file_id not specified")
        path = f"photos/{_UNSAFE.sub('_', file_id)[:64]}.jpg"
        result = {
            "file_id": file_id,
            "file_unique_id": _UNSAFE.sub("_", file_id)[:16],
            "file_size": len(media_bytes(path)),
            "file_path": path,
        }
        return _ok(result)

    def _other(bot_id: str, method: str) -> JSONResponse:
        if method == "getMe":
            me = {"id": int(bot_id), "is_bot": True, "first_name": "Sandbox Bot"}
            return _ok({**me, "username": f"sandbox_{bot_id}_bot"})
        if method in {"setWebhook", "deleteWebhook", "sendChatAction"}:
            return _ok(True)
        return bot_error(404, "Not Found")

    async def call(request: Request) -> Response:
        match = _TOKEN.fullmatch(request.path_params["token"])
        if match is None:
            return bot_error(401, "Unauthorized")
        bot_id = match.group(1)
        method = request.path_params["method"]
        json, form = await read_body(request)
        params = _params(json, form, dict(request.query_params))
        fault: Fault | None = None
        message_id: str | None = None
        if method not in _SEND_METHODS and method not in _CHANGE_METHODS and method != "getFile":
            response = _other(bot_id, method)
        elif (fault := await next_fault(state, "telegram")) is not None:
            response = fault_response(fault)
        elif method == "getFile":
            response = _get_file(params)
        elif method in _CHANGE_METHODS:
            response = _change(bot_id, method, params)
        else:
            response, message_id = _send(bot_id, method, params)
        record(
            state,
            request,
            provider="telegram",
            account=bot_id,
            json=json,
            form=form,
            status=response.status_code,
            fault=fault,
            message_id=message_id,
            # The token is the bot's password: keep only its public id part.
            path=f"/bot{bot_id}:<redacted>/{method}",
        )
        return response

    async def download(request: Request) -> Response:
        if _TOKEN.fullmatch(request.path_params["token"]) is None:
            return bot_error(401, "Unauthorized")
        path = request.path_params["path"]
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(media_bytes(path), media_type=media_type)

    return [
        Route("/file/bot{token}/{path:path}", download, methods=["GET"]),
        Route("/bot{token}/{method}", call, methods=["GET", "POST"]),
    ]
