"""E-mail adapter, outbound: threaded replies over a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from adapters.email import EmailAdapter
from engine.errors import ProviderRejectedError, ProviderUnavailableError
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    MessageType,
    OutboundMessage,
)

INBOUND = "support@help.acme.test"
CUSTOMER = "ana.lima@example.com"
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)
ADAPTER = EmailAdapter(clock=lambda: NOW, smtp_timeout_s=2)
QUOTED = "CAF8x2mQk9Zz=Rp1@mail.example.com"
EARLIER = ("CAF8x2mQk7Rt=Lw4@mail.example.com", "5f1c2d3e4a5b6c7d8e9f@help.acme.test")


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps what it accepts, refuses the recipients it is told to."""

    received: list[Envelope] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 2.0.0 OK: queued"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay", b"pw-ok")
    # handled=False: let aiosmtpd answer the refusal itself (535).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def channel_for(port: int, **config: Any) -> ChannelConnection:
    secrets = config.pop("secrets", ChannelSecrets())
    settings: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port} | config
    return ChannelConnection(
        id=3,
        tenant_id=7,
        type=ChannelType.EMAIL,
        external_id=INBOUND,
        config=ChannelConfig(**settings),
        secrets=secrets,
    )


def reply(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": 901,
        "tenant_id": 7,
        "channel_id": 3,
        "recipient": CUSTOMER,
        "type": MessageType.EMAIL,
        "subject": "Pedido #4521 atrasado",
        "body": "Olá Ana, seu pedido saiu para entrega hoje.",
        "quoted_provider_message_id": QUOTED,
        "thread_ids": EARLIER,
    }
    return OutboundMessage(**(fields | overrides))


def send(message: OutboundMessage, channel: ChannelConnection) -> str:
    with httpx.Client() as http:
        return ADAPTER.send(message, channel=channel, http=http).provider_message_id


def received_mail(envelope: Envelope) -> EmailMessage:
    parsed = BytesParser(policy=default_policy).parsebytes(envelope.original_content or b"")
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- a real SMTP conversation ----------------------------------------------------------------


def test_reply_is_threaded_under_the_customer_mail(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    provider_id = send(reply(), channel_for(port, from_address="Atendimento@Help.Acme.test"))
    [envelope] = mailbox.received
    assert envelope.mail_from == "atendimento@help.acme.test"
    assert envelope.rcpt_tos == [CUSTOMER]
    mail = received_mail(envelope)
    assert mail["From"] == "atendimento@help.acme.test"
    assert mail["To"] == CUSTOMER
    assert mail["Subject"] == "Re: Pedido #4521 atrasado"
    assert mail["In-Reply-To"] == f"<{QUOTED}>"
    assert mail["References"].split() == [f"<{i}>" for i in (*EARLIER, QUOTED)]
    assert mail["Message-ID"] == f"<{provider_id}>"
    assert provider_id.endswith("@help.acme.test")
    assert mail["Date"].datetime == NOW
    content = mail.get_content()
    assert isinstance(content, str)
    assert content.strip() == "Olá Ana, seu pedido saiu para entrega hoje."


def test_from_defaults_to_the_inbound_address(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    send(reply(), channel_for(port))
    [envelope] = mailbox.received
    assert envelope.mail_from == INBOUND and received_mail(envelope)["From"] == INBOUND


def test_media_is_sent_as_a_link(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    url = "https://files.acme.test/boleto-4521.pdf"
    send(reply(media_url=url, filename="boleto-4521.pdf"), channel_for(port))
    content = received_mail(mailbox.received[0]).get_content()
    assert isinstance(content, str) and f"boleto-4521.pdf: {url}" in content


def test_login_with_the_channel_password(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    channel = channel_for(
        port, smtp_username="relay", secrets=ChannelSecrets(smtp_password="pw-ok")
    )
    send(reply(), channel)
    assert len(mailbox.received) == 1


def test_retry_of_the_same_message_keeps_its_message_id(smtp_server: tuple[Mailbox, int]) -> None:
    _, port = smtp_server
    channel = channel_for(port)
    first, again = send(reply(), channel), send(reply(), channel)
    assert first == again
    assert send(reply(message_id=902), channel) != first


# --- SMTP failures -----------------------------------------------------------------------------


def test_recipient_refused_with_550_is_rejected(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    mailbox.rcpt_replies[CUSTOMER] = "550 5.1.1 Mailbox unavailable"
    with pytest.raises(ProviderRejectedError) as caught:
        send(reply(), channel_for(port))
    assert caught.value.code == "550"
    assert "Mailbox unavailable" in str(caught.value)
    assert mailbox.received == []


def test_recipient_deferred_with_450_is_retryable(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    mailbox.rcpt_replies[CUSTOMER] = "450 4.2.1 Mailbox busy, try later"
    with pytest.raises(ProviderUnavailableError, match="450"):
        send(reply(), channel_for(port))


@pytest.mark.parametrize(
    ("data_reply", "error", "code"),
    [
        ("554 5.7.1 Message rejected as spam", ProviderRejectedError, "554"),
        ("552 5.3.4 Message size exceeds fixed limit", ProviderRejectedError, "552"),
        ("451 4.3.0 Temporary server error", ProviderUnavailableError, None),
        ("421 4.7.0 Too many connections", ProviderUnavailableError, None),
    ],
)
def test_data_reply_is_classified_by_its_code(
    smtp_server: tuple[Mailbox, int], data_reply: str, error: type[Exception], code: str | None
) -> None:
    mailbox, port = smtp_server
    mailbox.data_reply = data_reply
    with pytest.raises(error) as caught:
        send(reply(), channel_for(port))
    if code is not None:
        assert isinstance(caught.value, ProviderRejectedError) and caught.value.code == code


def test_wrong_smtp_password_is_rejected_with_535(smtp_server: tuple[Mailbox, int]) -> None:
    _, port = smtp_server
    secrets = ChannelSecrets(smtp_password="wrong-pw-123")
    channel = channel_for(port, smtp_username="relay", secrets=secrets)
    with pytest.raises(ProviderRejectedError) as caught:
        send(reply(), channel)
    assert caught.value.code == "535"
    assert "wrong-pw-123" not in str(caught.value)


def test_starttls_against_a_server_without_it_is_a_configuration_error(
    smtp_server: tuple[Mailbox, int],
) -> None:
    _, port = smtp_server
    with pytest.raises(ProviderRejectedError) as caught:
        send(reply(), channel_for(port, smtp_starttls=True))
    assert caught.value.code == "smtp_not_supported"


def test_closed_port_is_unavailable() -> None:
    with pytest.raises(ProviderUnavailableError, match="ConnectionRefusedError"):
        send(reply(), channel_for(free_port()))


def test_silent_server_times_out_as_unavailable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts the TCP handshake, never says 220
        adapter = EmailAdapter(clock=lambda: NOW, smtp_timeout_s=0.3)
        with httpx.Client() as http, pytest.raises(ProviderUnavailableError):
            adapter.send(reply(), channel=channel_for(silent.getsockname()[1]), http=http)


# --- building the mail (no server) -----------------------------------------------------------


def test_channel_without_smtp_host_is_rejected() -> None:
    channel = ChannelConnection(id=3, tenant_id=7, type=ChannelType.EMAIL, external_id=INBOUND)
    with pytest.raises(ProviderRejectedError) as caught:
        send(reply(), channel)
    assert caught.value.code == "not_configured"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"recipient": "not an address"}, "invalid_recipient"),
        ({"recipient": "a@example.com, b@example.com"}, "invalid_recipient"),
        ({"body": None}, "empty_message"),
    ],
)
def test_unsendable_message_is_rejected_before_connecting(
    overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(reply(**overrides), channel_for(free_port()))
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("subject", "threaded", "expected"),
    [
        ("Pedido #4521", True, "Re: Pedido #4521"),
        ("RE: Pedido #4521", True, "RE: Pedido #4521"),
        ("Pedido #4521", False, "Pedido #4521"),
        (None, True, "Re: (no subject)"),
        (None, False, "(no subject)"),
        ("Linha 1\r\nBcc: victim@example.com", False, "Linha 1 Bcc: victim@example.com"),
    ],
)
def test_subject(
    smtp_server: tuple[Mailbox, int], subject: str | None, threaded: bool, expected: str
) -> None:
    mailbox, port = smtp_server
    thread: dict[str, Any] = {} if threaded else {"quoted_provider_message_id": None}
    send(
        reply(subject=subject, **thread, thread_ids=EARLIER if threaded else ()), channel_for(port)
    )
    mail = received_mail(mailbox.received[0])
    assert mail["Subject"] == expected
    assert mail["Bcc"] is None


def test_synthetic_ids_never_reach_the_headers(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    synthetic = "sha256:" + "0" * 64
    send(reply(quoted_provider_message_id=synthetic, thread_ids=(EARLIER[0],)), channel_for(port))
    mail = received_mail(mailbox.received[0])
    assert mail["In-Reply-To"] is None
    assert mail["References"] == f"<{EARLIER[0]}>"
