"""Every channel for end-to-end tests: seeding, signed webhooks in each provider's documented
shape, a logged-in agent over the REST API, and the sandbox's control API."""

from tests.support.channels.agent import Agent
from tests.support.channels.base import Customer, Expected, ProviderCase, Webhook, unique
from tests.support.channels.mail import MailgunEmail, SendGridEmail
from tests.support.channels.meta import Instagram, Messenger, WhatsApp
from tests.support.channels.sandbox import SandboxControl
from tests.support.channels.seeding import SeededChannel, post, seed_channel
from tests.support.channels.telegram import TELEGRAM_GROUP_ID, Telegram
from tests.support.channels.twilio import Sms

ALL_PROVIDERS: tuple[ProviderCase, ...] = (
    WhatsApp(),
    Messenger(),
    Instagram(),
    Telegram(),
    Sms(),
    MailgunEmail(),
    SendGridEmail(),
)

__all__ = [
    "ALL_PROVIDERS",
    "TELEGRAM_GROUP_ID",
    "Agent",
    "Customer",
    "Expected",
    "Instagram",
    "MailgunEmail",
    "Messenger",
    "ProviderCase",
    "SandboxControl",
    "SeededChannel",
    "SendGridEmail",
    "Sms",
    "Telegram",
    "Webhook",
    "WhatsApp",
    "post",
    "seed_channel",
    "unique",
]
