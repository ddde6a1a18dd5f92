"""What the operations views return: frozen models shared by the API, console and CLI."""

from __future__ import annotations

from datetime import datetime

from engine.events import Frozen


class MinuteCount(Frozen):
    minute: datetime
    processed: int
    failed: int


class TenantCount(Frozen):
    tenant_id: int | None
    count: int


class QueueDepth(Frozen):
    """What the broker itself can tell about one queue; None where it cannot."""

    ready: int
    delayed: int
    in_flight: int | None
    oldest_age_s: float | None


class QueueStats(Frozen):
    name: str
    ready: int
    delayed: int
    in_flight: int | None
    dead: int
    oldest_age_s: float | None
    processed_per_min: int
    failed_per_min: int
    history: tuple[MinuteCount, ...]
    dead_by_tenant: tuple[TenantCount, ...]


class QueuesOverview(Frozen):
    broker: str
    queues: tuple[QueueStats, ...]
    notes: tuple[str, ...] = ()


class CurrentMessage(Frozen):
    actor: str
    message_id: str
    queue: str
    started_at: datetime


class WorkerBeat(Frozen):
    id: str
    hostname: str
    pid: int
    threads: int
    queues: tuple[str, ...]
    started_at: datetime
    seen_at: datetime
    current: tuple[CurrentMessage, ...]


class IgnoredEvent(Frozen):
    id: int
    tenant_id: int
    channel_id: int
    status: str
    received_at: datetime
    reason: str | None


class InboxStatus(Frozen):
    unprocessed: int
    oldest_unprocessed_age_s: float | None
    dead: int
    recent_ignored: tuple[IgnoredEvent, ...]


class JobRun(Frozen):
    name: str
    every_s: int | None
    last_run_at: datetime | None
    last_outcome: str | None
    last_duration_ms: int | None
    next_run_at: datetime | None


class Leader(Frozen):
    lock_held: bool
    backend_pid: int | None
    hostname: str | None
    pid: int | None
    since: datetime | None


class SchedulerStatus(Frozen):
    leader: Leader
    jobs: tuple[JobRun, ...]
