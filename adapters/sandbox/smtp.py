"""SMTP sink: accepts (or, when told, refuses) every message and records it."""

from __future__ import annotations

import asyncio
import logging
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from adapters.sandbox.state import Fault, RecordedMail, SandboxState, utc_now

log = logging.getLogger(__name__)

_PERMANENT = {
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message size exceeds fixed limit",
    553: "553 5.1.3 Bad recipient address syntax",
    554: "554 5.7.1 Message rejected",
}


def fault_reply(fault: Fault) -> str:
    """The SMTP reply to the DATA command for a fault (4xx: try later, 5xx: never)."""
    if fault.mode == "rate_limit":
        return f"451 4.7.1 Too many messages, try again in {fault.retry_after_s} seconds"
    if fault.mode == "permanent":
        code = fault.code or 550
        return _PERMANENT.get(code, f"{code} 5.0.0 Sandbox permanent error")
    return "451 4.3.0 Temporary server error, try again later"


def _headers(raw: bytes) -> dict[str, str]:
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        # The first occurrence wins: that is the one a mail client shows (Received aside).
        headers.setdefault(name, str(value))
    return headers


class MailSink:
    """aiosmtpd handler recording into a SandboxState."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._state.take_fault("smtp")
        if fault is not None and fault.mode == "slow":
            await asyncio.sleep(fault.delay_ms / 1000)
            fault = None
        if fault is not None:
            return fault_reply(fault)
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        mail = self._state.record_mail(
            RecordedMail(
                seq=0,
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                headers=_headers(raw),
                time=utc_now(),
            )
        )
        log.debug("sandbox mail accepted", extra={"seq": mail.seq, "bytes": len(raw)})
        return f"250 2.0.0 OK: queued as {mail.seq}"


def _accept_any(*_args: Any) -> AuthResult:
    # The sink is for tests and the demo: any login succeeds, nothing about it is kept.
    return AuthResult(success=True)


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to bind port 0 and report the port it got."""

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


class SmtpSink:
    """The SMTP sink on its own thread and event loop."""

    def __init__(self, state: SandboxState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._controller = _Controller(
            MailSink(state),
            hostname=host,
            port=port,
            authenticator=_accept_any,
            auth_require_tls=False,
        )

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
