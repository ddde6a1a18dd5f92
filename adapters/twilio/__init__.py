"""Twilio Programmable Messaging (SMS/MMS) channel."""

from adapters.twilio.adapter import ADAPTER, TwilioAdapter

__all__ = ["ADAPTER", "TwilioAdapter"]
