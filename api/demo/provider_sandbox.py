"""The provider sandbox for the demo: started on threads of this process, driven through its
control API (/_sandbox/…) like any other client would drive it."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from adapters.email.mail import normalise_message_id
from adapters.sandbox import Sandbox
from adapters.sandbox.control import CallbackSpec, FaultSpec
from api.demo.errors import DemoError
from api.demo.seed import SandboxAddress, Seeded
from engine.events import ChannelType

_CONTROL_TIMEOUT_S = 10.0


def _recipient(raw: dict[str, Any]) -> str | None:
    """Whom a recorded send was addressed to, read the way each provider's API names it."""
    body, form = raw.get("json"), raw.get("form")
    body = body if isinstance(body, dict) else {}
    form = form if isinstance(form, dict) else {}
    match raw.get("provider"):
        case "whatsapp":
            value = body.get("to")
        case "messenger" | "instagram":
            value = (body.get("recipient") or {}).get("id")
        case "telegram":
            value = body.get("chat_id", form.get("chat_id"))
        case "twilio":
            value = form.get("To")
        case _:
            value = None
    return None if value is None else str(value)


class SandboxRequest(BaseModel):
    """One provider API call the sandbox answered (GET /_sandbox/requests)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: str
    account: str | None
    status: int
    fault: str | None
    message_id: str | None
    recipient: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _with_recipient(cls, raw: Any) -> Any:
        return {**raw, "recipient": _recipient(raw)} if isinstance(raw, dict) else raw


class SandboxMail(BaseModel):
    """One mail the SMTP sink accepted (GET /_sandbox/mail)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rcpt_tos: tuple[str, ...]
    headers: dict[str, str] = Field(default_factory=dict)

    @property
    def message_id(self) -> str | None:
        raw = self.headers.get("Message-ID")
        return normalise_message_id(raw) if raw else None


class CallbackSent(BaseModel):
    """One status webhook the sandbox posted to the engine (GET /_sandbox/callbacks/deliveries)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: str
    account: str
    message_id: str
    status: str
    http_status: int | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


_REQUESTS = TypeAdapter(list[SandboxRequest])
_MAIL = TypeAdapter(list[SandboxMail])
_CALLBACKS = TypeAdapter(list[CallbackSent])


class ProviderSandbox:
    """Graph API, Telegram Bot API, Twilio and SMTP twins on free ports of 127.0.0.1."""

    def __init__(self) -> None:
        self._sandbox = Sandbox()
        self._client: httpx.Client | None = None
        self._ports: tuple[int, int] | None = None
        self.left_listening: list[str] = []

    def start(self) -> SandboxAddress:
        """Raises DemoError when a server does not come up."""
        try:
            self._sandbox.start()
        except (RuntimeError, OSError) as exc:
            raise DemoError(f"the provider sandbox did not start: {exc}") from None
        self._ports = (int(self._sandbox.http_url.rpartition(":")[2]), self._sandbox.smtp_port)
        self._client = httpx.Client(base_url=self._sandbox.http_url, timeout=_CONTROL_TIMEOUT_S)
        return SandboxAddress(self._sandbox.http_url, self._sandbox.host, self._sandbox.smtp_port)

    def stop(self) -> list[str]:
        """Stop both servers; returns how it went, for the summary. Safe to call twice.

        Ports still accepting connections afterwards are kept in `left_listening`.
        """
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._ports is None:
            return []
        self._sandbox.stop()
        http_port, smtp_port = self._ports
        self._ports = None
        self.left_listening = [
            f"provider sandbox still listening on :{p}"
            for p in (http_port, smtp_port)
            if _listening(p)
        ]
        return [f"provider sandbox: stopped (HTTP :{http_port}, SMTP :{smtp_port})"]

    def _control(self) -> httpx.Client:
        if self._client is None:
            raise DemoError("the provider sandbox is not running")
        return self._client

    def _call(self, method: str, path: str, body: BaseModel | None = None) -> httpx.Response:
        content = body.model_dump_json().encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            response = self._control().request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise DemoError(f"sandbox {method} {path} failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise DemoError(f"sandbox {method} {path} answered {response.status_code}")
        return response

    def register_callback(self, spec: CallbackSpec) -> None:
        """Status webhooks of sends from `spec.account` go to `spec.url`, signed with its secret."""
        self._call("POST", "/_sandbox/callbacks", spec)

    def add_fault(self, spec: FaultSpec) -> None:
        """The next request(s) to `spec.provider` fail as `spec.mode` says."""
        self._call("POST", "/_sandbox/faults", spec)

    def requests(self) -> list[SandboxRequest]:
        return _REQUESTS.validate_json(self._call("GET", "/_sandbox/requests").content)

    def mail(self) -> list[SandboxMail]:
        return _MAIL.validate_json(self._call("GET", "/_sandbox/mail").content)

    def callbacks_sent(self) -> list[CallbackSent]:
        return _CALLBACKS.validate_json(self._call("GET", "/_sandbox/callbacks/deliveries").content)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def register_callbacks(sandbox: ProviderSandbox, seeded: Seeded, *, base_url: str) -> int:
    """Have the sandbox report delivery statuses of every channel whose provider does so
    (Telegram and SMTP do not) to that channel's webhook URL, signed with its secret."""
    business = seeded.business
    specs = [
        CallbackSpec(
            provider="whatsapp",
            account=business.phone_number_id,
            url=base_url + seeded.whatsapp.webhook_path,
            secret=seeded.whatsapp.secret,
            waba_id=business.waba_id,
            display_phone_number=business.display_phone_number,
        ),
        *(
            CallbackSpec(
                provider=provider,
                account=seeded.channels[kind].external_id,
                url=base_url + seeded.channels[kind].webhook_path,
                secret=seeded.channels[kind].secret,
            )
            for kind, provider in (
                (ChannelType.MESSENGER, "messenger"),
                (ChannelType.INSTAGRAM, "instagram"),
                (ChannelType.SMS, "twilio"),
            )
        ),
    ]
    for spec in specs:
        sandbox.register_callback(spec)
    return len(specs)
