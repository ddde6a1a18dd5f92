"""The agent's side of the demo: log in, reply on one ticket per channel over the REST API,
and wait until each reply ends the way its provider (the sandbox) makes it end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine

from api.demo.channels import Reply
from api.demo.errors import DemoError
from api.demo.observe_channels import find_message
from api.demo.provider_sandbox import ProviderSandbox
from api.demo.seed import Seeded

REPLY_TIMEOUT_S = 30.0
_POLL_S = 0.2
_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class SentReply:
    """A reply as the agent saw it through the API: its ids and the status it ended in."""

    reply: Reply
    ticket_id: int
    message_id: int
    status: str
    error_code: str | None
    seconds: float  # from the POST until it reached that status

    @property
    def as_planned(self) -> bool:
        return self.status == self.reply.expect_status and (
            self.reply.expect_code is None or self.error_code == self.reply.expect_code
        )


class _Login(BaseModel):
    model_config = ConfigDict(extra="ignore")
    access_token: str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    status: str
    error_code: str | None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[_Message]


class Agent:
    """The demo admin at work: a logged-in REST client."""

    def __init__(self, base_url: str, *, email: str, password: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=15.0)
        login = self._call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        token = _parse(_Login, login).access_token
        self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: object = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {path} failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response

    def reply(self, ticket_id: int, body: str, *, quoting: int | None = None) -> int:
        """POST /api/v1/tickets/{id}/messages; the id of the message, recorded `pending`."""
        request: dict[str, object] = {"body": body}
        if quoting is not None:
            request["quoted_message_id"] = quoting
        answer = self._call("POST", f"/api/v1/tickets/{ticket_id}/messages", request)
        return _parse(_Message, answer).id

    def status(self, ticket_id: int, message_id: int) -> tuple[str, str | None]:
        """(status, error code) of one message, as the ticket screen shows it."""
        page = self._call("GET", f"/api/v1/tickets/{ticket_id}/messages?limit=100")
        for item in _parse(_Page, page).items:
            if item.id == message_id:
                return item.status, item.error_code
        raise DemoError(f"message {message_id} is not on ticket {ticket_id}")


def _parse(model: type[_Model], response: httpx.Response) -> _Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise DemoError(f"unexpected answer from {response.request.url.path}") from None


def send_replies(
    replies: Sequence[Reply],
    *,
    agent: Agent,
    db: Engine,
    seeded: Seeded,
    sandbox: ProviderSandbox,
    say: Callable[[str], None],
) -> list[SentReply]:
    """Queue each wave's faults, post its replies, wait for them to settle, then the next wave.

    A reply that has not settled after REPLY_TIMEOUT_S is returned as it stands (the summary's
    checks then say so).
    """
    done: list[SentReply] = []
    waves = sorted({r.wave for r in replies})
    for number, wave in enumerate(waves, start=1):
        batch = [r for r in replies if r.wave == wave]
        for reply in batch:
            if reply.fault is not None:
                sandbox.add_fault(reply.fault)
        started = time.monotonic()
        posted = [_post(agent, db, seeded, r) for r in batch]
        say(f"replies, wave {number}/{len(waves)}: {len(posted)} posted")
        done += _settle(agent, posted, started, say)
    return done


def _post(agent: Agent, db: Engine, seeded: Seeded, reply: Reply) -> tuple[Reply, int, int]:
    channel = seeded.channels[reply.channel]
    found = find_message(db, channel.id, reply.answers)
    if found is None:
        raise DemoError(f"no stored {reply.channel} message {reply.answers} to answer")
    answered, ticket_id = found
    message_id = agent.reply(ticket_id, reply.body, quoting=answered if reply.quote else None)
    return reply, ticket_id, message_id


def _settle(
    agent: Agent,
    posted: list[tuple[Reply, int, int]],
    started: float,
    say: Callable[[str], None],
) -> list[SentReply]:
    waiting = list(posted)
    settled: list[SentReply] = []
    deadline = started + REPLY_TIMEOUT_S
    while waiting:
        for item in list(waiting):
            reply, ticket_id, message_id = item
            status, code = agent.status(ticket_id, message_id)
            timed_out = time.monotonic() > deadline
            if _RANK.get(status, 0) >= _RANK[reply.expect_status] or timed_out:
                elapsed = time.monotonic() - started
                sent = SentReply(reply, ticket_id, message_id, status, code, round(elapsed, 1))
                settled.append(sent)
                waiting.remove(item)
                late = " (still waiting: gave up)" if timed_out else ""
                failed = f" {code}" if code else ""
                say(f"  {reply.channel} reply to {reply.contact}: {status}{failed}{late}")
        if waiting:
            time.sleep(_POLL_S)
    return settled
