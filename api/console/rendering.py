"""Templates and the responses every console page shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from api.ops_access import Operator
from api.ops_service import age_text, when_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
_ENV.filters["age"] = age_text
_ENV.filters["when"] = when_text
templates = Jinja2Templates(env=_ENV)

# Notices after a form post travel as a code, never as text: a crafted link cannot put words
# on the page.
NOTICES = {
    "requeued": "Requeued {n} dead letter(s).",
    "purged": "Purged {n} dead letter(s).",
    "already": "That dead letter was already requeued.",
    "signed-out": "Signed out.",
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
}


def page(
    request: Request,
    name: str,
    operator: Operator | None,
    *,
    section: str = "",
    status: int = 200,
    errors: tuple[str, ...] = (),
    **context: Any,
) -> Response:
    flashes = [("error", e) for e in errors]
    notice = NOTICES.get(request.query_params.get("notice", ""))
    if notice is not None:
        n = request.query_params.get("n", "0")
        flashes.append(("", notice.format(n=int(n) if n.isdigit() else 0)))
    return templates.TemplateResponse(
        request,
        name,
        {
            "signed_in": operator is not None,
            "csrf": operator.csrf if operator else "",
            "section": section,
            "flashes": flashes,
            **context,
        },
        status_code=status,
        headers=HEADERS,
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
