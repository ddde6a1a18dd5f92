"""Facebook Messenger channel (a Facebook Page's inbox)."""

from adapters.messenger.adapter import ADAPTER, MessengerAdapter

__all__ = ["ADAPTER", "MessengerAdapter"]
