"""Console sign-in and sign-out, and the guard every console page goes through."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.console.rendering import page, redirect
from api.ops_access import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    Operator,
    SignInRefused,
    console_operator,
    csrf_ok,
    sign_in,
    sign_out,
)

LOGIN_COOKIE = "fd_ops_login"  # double-submit token of the sign-in form (no session yet)
MAX_FORM_BYTES = 16 * 1024
Page = Callable[[Request, Operator], Awaitable[Response]]


def guarded(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Signed-in operators only (else to the sign-in page); POSTs must carry the CSRF token."""

    async def endpoint(request: Request) -> Response:
        operator = await console_operator(request)
        if operator is None:
            return redirect("/ops/console/login")
        if request.method == "POST":
            form = await read_form(request)
            if not csrf_ok(operator, str(form.get("csrf", ""))):
                return page(
                    request,
                    "error.html",
                    operator,
                    status=403,
                    errors=("The form expired; reload the page and try again.",),
                )
        return await handler(request, operator)

    endpoint.__name__ = handler.__name__
    return endpoint


async def read_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings (cached on the request for the handler)."""
    cached = getattr(request.state, "ops_form", None)
    if cached is not None:
        return dict(cached)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return {}
    form = await request.form(max_files=0, max_fields=50)
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    request.state.ops_form = values
    return dict(values)


async def login_form(request: Request) -> Response:
    if await console_operator(request) is not None:
        return redirect("/ops/console")
    return _login_page(request)


def _login_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status=status,
        errors=(error,) if error else (),
        login_token=token,
    )
    _cookie(request, response, LOGIN_COOKIE, token, max_age=1800)
    return response


async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get("login_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        return _login_page(request, error="The form expired; try again.", status=403)
    try:
        session_id = await sign_in(
            request,
            token=form.get("token", "").strip(),
            email=form.get("email", "").strip(),
            password=form.get("password", ""),
            totp_code=form.get("totp_code", "").strip(),
        )
    except SignInRefused as exc:
        return _login_page(request, error=str(exc), status=401)
    response = redirect("/ops/console")
    _cookie(request, response, SESSION_COOKIE, session_id, max_age=SESSION_TTL_S)
    response.delete_cookie(LOGIN_COOKIE, path="/ops/console")
    return response


async def logout(request: Request, operator: Operator) -> Response:
    await sign_out(request)
    response = redirect("/ops/console/login?notice=signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/ops")
    return response


def _cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ops" if name == SESSION_COOKIE else "/ops/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


routes = [
    Route("/ops/console/login", login_form, methods=["GET"]),
    Route("/ops/console/login", login, methods=["POST"]),
    Route("/ops/console/logout", guarded(logout), methods=["POST"]),
]
