"""Telegram Bot API channel."""

from adapters.telegram.adapter import ADAPTER, TelegramAdapter

__all__ = ["ADAPTER", "TelegramAdapter"]
