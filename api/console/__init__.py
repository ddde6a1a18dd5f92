"""The ops console: server-rendered pages (Jinja2, autoescaped) over the operations API."""

from __future__ import annotations

from starlette.routing import Route

from api.console import pages, session

routes: list[Route] = [*session.routes, *pages.routes]
