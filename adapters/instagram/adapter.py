"""Instagram adapter: `object: "instagram"` webhooks in, Send API out; routed by IG account id."""

from __future__ import annotations

from adapters.meta.messaging import MetaMessagingAdapter
from engine.events import ChannelType


class InstagramAdapter(MetaMessagingAdapter):
    """An Instagram professional account's Direct inbox; senders are IG-scoped ids (IGSIDs)."""

    channel_type = ChannelType.INSTAGRAM
    webhook_object = "instagram"


ADAPTER = InstagramAdapter()
