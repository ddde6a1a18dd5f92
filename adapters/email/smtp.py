"""Outbound mail over SMTP: one threaded EmailMessage per reply, SMTP replies made engine errors."""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from adapters.email.mail import SYNTHETIC_PREFIX, addresses, bare
from engine.errors import EngineError, ProviderRejectedError, ProviderUnavailableError
from engine.events import ChannelConnection, OutboundMessage

DEFAULT_SUBJECT = "(no subject)"
_DEFAULT_PORT = 587
_IMPLICIT_TLS_PORT = 465
_REPLY_PREFIX = re.compile(r"\s*re\s*:", re.IGNORECASE)
_ERROR_TEXT_MAX_CHARS = 200


def _single_address(raw: str, what: str, code: str) -> str:
    found = addresses(raw)
    if len(found) != 1:
        raise ProviderRejectedError(f"{what} is not one e-mail address", code=code)
    return bare(found[0])


def sender_address(channel: ChannelConnection) -> str:
    """The channel's From: config.from_address, else the inbound address itself."""
    raw = channel.config.from_address or channel.external_id
    return _single_address(raw, "from address", "invalid_sender")


def _subject(message: OutboundMessage) -> str:
    # Folding a subject onto one line also keeps CR/LF out of the header block.
    subject = " ".join((message.subject or "").split()) or DEFAULT_SUBJECT
    replying = bool(message.quoted_provider_message_id or message.thread_ids)
    if replying and not _REPLY_PREFIX.match(subject):
        return "Re: " + subject
    return subject


def _thread(message: OutboundMessage) -> list[str]:
    """References in order, ending with the mail we answer; synthetic ids never left us."""
    ids = [*message.thread_ids]
    if message.quoted_provider_message_id:
        ids.append(message.quoted_provider_message_id)
    real = (i for i in ids if not i.startswith(SYNTHETIC_PREFIX) and re.fullmatch(r"[^<>\s]+", i))
    return list(dict.fromkeys(real))


def _message_id(message: OutboundMessage, sender: str, recipient: str) -> str:
    # Deterministic per outbound message: a retry after an ambiguous failure (connection lost
    # after DATA) carries the same Message-ID, which mailboxes collapse, and the same
    # provider id for us. Hashed so the ids reveal no counts.
    seed = f"{message.tenant_id}:{message.channel_id}:{message.message_id}:{sender}:{recipient}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:40]
    return f"{digest}@{sender.rpartition('@')[2]}"


def _text(message: OutboundMessage) -> str:
    parts = [message.body or ""]
    if message.media_url:
        label = f"{message.filename}: " if message.filename else ""
        parts.append(label + message.media_url)
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


def build_message(
    message: OutboundMessage, *, sender: str, now: datetime
) -> tuple[EmailMessage, str]:
    """The mail to submit and its Message-ID (without angle brackets)."""
    if not (message.body or message.media_url):
        raise ProviderRejectedError("nothing to send: no body and no media", code="empty_message")
    recipient = _single_address(message.recipient, "recipient", "invalid_recipient")
    message_id = _message_id(message, sender, recipient)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = _subject(message)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<{message_id}>"
    thread = _thread(message)
    # The mail answered: the one quoted, else the thread's latest (the customer's last mail).
    parent = message.quoted_provider_message_id or (thread[-1] if thread else None)
    if parent is not None and parent in thread:
        mail["In-Reply-To"] = f"<{parent}>"
    if thread:
        mail["References"] = " ".join(f"<{i}>" for i in thread)
    mail.set_content(_text(message))
    return mail, message_id


def _code_error(code: int, text: bytes | str, what: str) -> EngineError:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    detail = f"SMTP {what} {code}: {reply[:_ERROR_TEXT_MAX_CHARS]}"
    # RFC 5321 §4.2.1: 5yz is a permanent refusal, 4yz a transient one.
    if 500 <= code <= 599:
        return ProviderRejectedError(detail, code=str(code))
    return ProviderUnavailableError(detail)


def _translate(exc: smtplib.SMTPException | OSError) -> EngineError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (451, b"recipient refused"))
        return _code_error(code, text, "recipient refused")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _code_error(exc.smtp_code, exc.smtp_error, type(exc).__name__)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # STARTTLS or AUTH asked for, server does not offer it: channel configuration.
        return ProviderRejectedError(f"SMTP server lacks: {exc}", code="smtp_not_supported")
    return ProviderUnavailableError(f"SMTP connection failed: {type(exc).__name__}")


def _connect(channel: ChannelConnection, timeout_s: float) -> smtplib.SMTP:
    config = channel.config
    if not config.smtp_host:
        raise ProviderRejectedError("channel has no smtp_host", code="not_configured")
    port = config.smtp_port or _DEFAULT_PORT
    if port == _IMPLICIT_TLS_PORT:
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(config.smtp_host, port, timeout=timeout_s, context=context)
    return smtplib.SMTP(config.smtp_host, port, timeout=timeout_s)


def _quit(smtp: smtplib.SMTP) -> None:
    # The mail is already accepted (or refused) by now; a failing QUIT must not turn a
    # delivered mail into a retry.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def submit(
    mail: EmailMessage, *, sender: str, recipient: str, channel: ChannelConnection, timeout_s: float
) -> None:
    """Hand `mail` to the channel's SMTP server. Raises engine errors only."""
    try:
        smtp = _connect(channel, timeout_s)
    except (smtplib.SMTPException, OSError) as exc:
        raise _translate(exc) from None
    try:
        if channel.config.smtp_starttls and not isinstance(smtp, smtplib.SMTP_SSL):
            smtp.starttls(context=ssl.create_default_context())
        if channel.config.smtp_username:
            smtp.login(channel.config.smtp_username, channel.secrets.smtp_password or "")
        smtp.send_message(mail, from_addr=sender, to_addrs=[recipient])
    except (smtplib.SMTPException, OSError) as exc:
        raise _translate(exc) from None
    finally:
        _quit(smtp)
