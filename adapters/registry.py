"""Every channel this engine ships: its adapter and the model that validates its set-up."""

from __future__ import annotations

from typing import Protocol

from adapters.base import ChannelAdapter, MessageEditor
from engine.events import ChannelConfig, ChannelSecrets, ChannelType


class ChannelSetup(Protocol):
    """What `channel create --config JSON` is validated into, per channel type."""

    def to_channel(self) -> tuple[str, ChannelConfig, ChannelSecrets]: ...


def all_adapters() -> dict[ChannelType, ChannelAdapter]:
    from adapters.email import ADAPTER as EMAIL
    from adapters.instagram import ADAPTER as INSTAGRAM
    from adapters.messenger import ADAPTER as MESSENGER
    from adapters.telegram import ADAPTER as TELEGRAM
    from adapters.twilio import ADAPTER as SMS
    from adapters.whatsapp import ADAPTER as WHATSAPP

    return {
        ChannelType.WHATSAPP: WHATSAPP,
        ChannelType.MESSENGER: MESSENGER,
        ChannelType.INSTAGRAM: INSTAGRAM,
        ChannelType.TELEGRAM: TELEGRAM,
        ChannelType.SMS: SMS,
        ChannelType.EMAIL: EMAIL,
    }


def can_change_sent(channel_type: ChannelType) -> bool:
    """Whether the channel's provider lets a message it already has be edited or deleted."""
    return isinstance(all_adapters()[channel_type], MessageEditor)


def setup_models() -> dict[ChannelType, type[ChannelSetup]]:
    """The pydantic model that validates each channel type's set-up JSON."""
    from adapters.email.setup import ChannelSetup as EmailSetup
    from adapters.instagram.setup import ChannelSetup as InstagramSetup
    from adapters.messenger.setup import ChannelSetup as MessengerSetup
    from adapters.telegram.setup import ChannelSetup as TelegramSetup
    from adapters.twilio.setup import ChannelSetup as SmsSetup
    from adapters.whatsapp.setup import ChannelSetup as WhatsAppSetup

    return {
        ChannelType.WHATSAPP: WhatsAppSetup,
        ChannelType.MESSENGER: MessengerSetup,
        ChannelType.INSTAGRAM: InstagramSetup,
        ChannelType.TELEGRAM: TelegramSetup,
        ChannelType.SMS: SmsSetup,
        ChannelType.EMAIL: EmailSetup,
    }
