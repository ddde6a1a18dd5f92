"""Instagram messaging channel (an Instagram professional account's Direct inbox)."""

from adapters.instagram.adapter import ADAPTER, InstagramAdapter

__all__ = ["ADAPTER", "InstagramAdapter"]
