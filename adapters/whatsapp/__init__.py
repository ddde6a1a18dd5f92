"""WhatsApp Cloud API channel."""

from adapters.whatsapp.adapter import ADAPTER, WhatsAppAdapter

__all__ = ["ADAPTER", "WhatsAppAdapter"]
