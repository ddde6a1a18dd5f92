"""Messenger adapter: `object: "page"` webhooks in, Send API out; routed by Page id."""

from __future__ import annotations

from adapters.meta.messaging import MetaMessagingAdapter
from engine.events import ChannelType


class MessengerAdapter(MetaMessagingAdapter):
    """A Facebook Page's Messenger inbox; senders are page-scoped ids (PSIDs)."""

    channel_type = ChannelType.MESSENGER
    webhook_object = "page"


ADAPTER = MessengerAdapter()
