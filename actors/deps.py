"""The worker's composition root: the dependencies actors use, built once per process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import redis
from sqlalchemy import Engine

from adapters.base import ChannelAdapter
from config import Settings
from engine.db import system_tx
from engine.events import ChannelType
from engine.http_pool import HttpPool
from engine.media import DEFAULT_ALLOWED_TYPES, MediaStorage
from engine.ratelimit import TokenBucket
from engine.store.dead_letters import NewDeadLetter, infer_tenant, insert_dead_letter


@dataclass(frozen=True)
class WorkerDeps:
    settings: Settings
    db: Engine
    redis: redis.Redis
    adapters: Mapping[ChannelType, ChannelAdapter]
    http: httpx.Client
    bucket: TokenBucket
    storage: MediaStorage
    # Provider calls of batched sends (None: one after another on the actor's thread).
    send_pool: HttpPool | None = None

    def record_dead_letter(self, dl: NewDeadLetter) -> None:
        with system_tx(self.db) as conn:
            if dl.tenant_id is None:
                tenant_id = infer_tenant(conn, dl.actor, dl.payload_json)
                dl = dl.model_copy(update={"tenant_id": tenant_id})
            insert_dead_letter(conn, dl)

    @property
    def realtime_prefix(self) -> str:
        return self.settings.QUEUE_PREFIX

    @property
    def media_allowed_types(self) -> tuple[str, ...]:
        """MEDIA_ALLOWED_TYPES, or the engine's default when unset."""
        return self.settings.MEDIA_ALLOWED_TYPES or DEFAULT_ALLOWED_TYPES


_current: WorkerDeps | None = None


def install(deps: WorkerDeps) -> None:
    """Make `deps` what actors in this process use (worker start-up, tests)."""
    global _current
    _current = deps


def current() -> WorkerDeps:
    if _current is None:
        raise RuntimeError("worker dependencies not installed; start through `flowdesk worker`")
    return _current


def default_adapters() -> dict[ChannelType, ChannelAdapter]:
    """Every channel adapter this engine ships."""
    from adapters.registry import all_adapters

    return all_adapters()
