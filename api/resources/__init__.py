"""The tenant's configuration resources: one router per resource, declared with api.framework."""

from __future__ import annotations

from api.framework import ApiRouter
from api.resources import (
    channels,
    contact_links,
    contacts,
    fast_replies,
    queues,
    settings,
    tags,
    tenants,
    users,
)

ROUTERS: list[ApiRouter] = [
    contacts.router,
    contact_links.router,
    tags.router,
    queues.router,
    users.router,
    channels.router,
    settings.router,
    fast_replies.router,
    tenants.router,
]
