"""What the scheduler tells operators: its leadership and each job's last and next run."""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime

import redis
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler

from engine.ops import keys

log = logging.getLogger(__name__)


class SchedulerRecorder:
    """Writes the scheduler's state to Redis (engine/ops/scheduler.py reads it); best effort."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._jobs: BaseScheduler | None = None

    def attach(self, jobs: BaseScheduler) -> None:
        self._jobs = jobs
        jobs.add_listener(self._on_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def became_leader(self, backend_pid: int) -> None:
        """Name this process as leader and publish every job's first next run."""
        leader = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "backend_pid": backend_pid,
            "since": datetime.now(UTC).isoformat(),
        }
        self._write(keys.scheduler_leader_key(self.prefix), json.dumps(leader))
        for job in self._jobs.get_jobs() if self._jobs else []:
            self._record(job, outcome=None, ran_at=None, duration_ms=None)

    def _on_run(self, event: JobExecutionEvent) -> None:
        job = self._jobs.get_job(event.job_id) if self._jobs else None
        if job is None:
            return
        ran_at = event.scheduled_run_time
        duration_ms = int((datetime.now(UTC) - ran_at).total_seconds() * 1000)
        outcome = "ok" if event.exception is None else f"error: {type(event.exception).__name__}"
        self._record(job, outcome=outcome, ran_at=ran_at, duration_ms=duration_ms)

    def _record(
        self, job: Job, *, outcome: str | None, ran_at: datetime | None, duration_ms: int | None
    ) -> None:
        interval = getattr(job.trigger, "interval", None)
        next_run = job.next_run_time
        run = {
            "every_s": int(interval.total_seconds()) if interval is not None else None,
            "last_run_at": ran_at.isoformat() if ran_at else None,
            "last_outcome": outcome,
            "last_duration_ms": duration_ms,
            "next_run_at": next_run.isoformat() if next_run else None,
        }
        key = keys.scheduler_jobs_key(self.prefix)
        try:
            previous = self.client.hget(key, job.id) if ran_at is None else None
            if previous:  # keep the last leader's last run until this one has its own
                old = json.loads(previous)
                run |= {k: old.get(k) for k in ("last_run_at", "last_outcome", "last_duration_ms")}
            self.client.hset(key, job.id, json.dumps(run))
            self.client.expire(key, keys.SCHEDULER_TTL_S)
        except redis.RedisError as exc:
            log.debug("scheduler state not written", extra={"error": type(exc).__name__})

    def _write(self, key: str, value: str) -> None:
        try:
            self.client.set(key, value, ex=keys.SCHEDULER_TTL_S)
        except redis.RedisError as exc:
            log.debug("scheduler state not written", extra={"error": type(exc).__name__})
