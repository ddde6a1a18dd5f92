"""What API routes need from the composition root, read from `request.app.state.deps`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from adapters.base import InboundAdapter
from config.settings import Settings
from engine.events import ChannelType

if TYPE_CHECKING:
    from api.channels import ChannelDirectory, RejectionCounters
    from api.ingest import GroupCommitter


class ApiDeps(Protocol):
    """Set once by the app's lifespan as `app.state.deps`.

    Read-only members, so a frozen dataclass and a SimpleNamespace both satisfy it.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> AsyncEngine: ...


class WebhookDeps(ApiDeps, Protocol):
    """What the webhook endpoints need on top of ApiDeps."""

    @property
    def adapters(self) -> Mapping[ChannelType, InboundAdapter]: ...

    @property
    def ingest(self) -> GroupCommitter: ...

    @property
    def channels(self) -> ChannelDirectory: ...

    @property
    def counters(self) -> RejectionCounters: ...


def get_deps(request: Request) -> ApiDeps:
    """The dependencies of the app serving `request`."""
    deps: ApiDeps = request.app.state.deps
    return deps
