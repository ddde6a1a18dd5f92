"""The tenant's automation: chat-flow bots, auto-replies and auto-tag rules."""

from __future__ import annotations

from api.automation import chat_flows, rules
from api.framework import ApiRouter

ROUTERS: list[ApiRouter] = [chat_flows.router, rules.auto_replies, rules.auto_tags]
