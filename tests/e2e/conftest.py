"""End-to-end fixtures: one provider sandbox per module, a fresh engine per test, and for
tests parametrized by `provider`, its channel and a logged-in agent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from adapters.sandbox import Sandbox
from tests.support import harness
from tests.support.channels import Agent, ProviderCase, SandboxControl, SeededChannel, seed_channel
from tests.support.harness import RunningEngine, running_engine


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def sandbox_control(sandbox: Sandbox) -> Iterator[SandboxControl]:
    """The module's sandbox, forgotten clean before each test."""
    control = SandboxControl(sandbox.http_url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def flowdesk(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningEngine]:
    """The engine, with BACKEND_URL its own address: Twilio signs the URL it posts to."""
    port = harness.free_port()
    monkeypatch.setattr(harness, "free_port", lambda: port)
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        BACKEND_URL=f"http://127.0.0.1:{port}",
    ) as running:
        assert running.base_url == f"http://127.0.0.1:{port}"
        yield running


@pytest.fixture
def channel(provider: ProviderCase, clean_db: Engine, sandbox: Sandbox) -> SeededChannel:
    """A tenant with the test's `provider` channel, its API base URLs on the sandbox."""
    setup = provider.setup(sandbox.http_url, sandbox.smtp_port)
    return seed_channel(clean_db, provider.type, setup)


@pytest.fixture
def agent(flowdesk: RunningEngine, channel: SeededChannel) -> Iterator[Agent]:
    """The channel's tenant admin, logged in over the REST API."""
    logged_in = Agent(flowdesk, channel.seeded)
    yield logged_in
    logged_in.close()
