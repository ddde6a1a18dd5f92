"""E-mail channel: Mailgun routes or SendGrid Inbound Parse in, SMTP out."""

from adapters.email.adapter import ADAPTER, EmailAdapter
from adapters.email.inbound import attachment_bytes

__all__ = ["ADAPTER", "EmailAdapter", "attachment_bytes"]
