"""Pre-framework read routes: none are left (contacts moved to api/resources/contacts.py).

Kept only while app.py and the tests still list `read.routes`; delete it with them.
"""

from __future__ import annotations

from starlette.routing import Route

routes: list[Route] = []
