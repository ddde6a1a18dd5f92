"""Tickets and their messages: the agent inbox, ticket actions, sending and scheduling."""

from api.framework import ApiRouter
from api.tickets import actions, listing, messages
from api.tickets.common import router as _tickets

__all__ = ["actions", "listing", "messages", "router"]

# One router for app.py to mount; each endpoint keeps its own OpenAPI tag.
router = ApiRouter(_tickets.tag, specs=[*_tickets.specs, *messages.router.specs])
