"""The scheduler process: one leader (PostgreSQL advisory lock) running sweeps and due sends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from actors.automation_jobs import BOT_TIMEOUT_EVERY_S, time_out_idle_bots
from actors.campaigns import TICK_EVERY_S, enqueue_ticks, start_due
from actors.deps import WorkerDeps
from actors.maintenance import sweep
from actors.outbound import send_message
from actors.privacy_jobs import RETENTION_EVERY_S, run_retention
from actors.routing_jobs import (
    AUTO_CLOSE_EVERY_S,
    DISTRIBUTE_EVERY_S,
    SLA_EVERY_S,
    check_slas,
    close_inactive,
    distribute_all,
)
from actors.scheduler_state import SchedulerRecorder
from engine.db import system_tx
from engine.errors import DatabaseUnavailableError
from engine.store.scheduled_messages import release_due_messages

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 7_265_432
# A scheduled message goes out within this many seconds of its time.
SCHEDULED_SEND_EVERY_S = 5
SCHEDULED_SEND_BATCH = 500


def send_due_messages(
    db: Engine, enqueue: Callable[[int], object], *, limit: int = SCHEDULED_SEND_BATCH
) -> list[int]:
    """Release scheduled messages whose time has come and enqueue each send; their ids.

    The release commits before the enqueue, and releases each message once even when two
    calls overlap: a lost enqueue leaves a plain pending message for the sweeper, never a
    second send.
    """
    with system_tx(db) as conn:
        message_ids = release_due_messages(conn, limit=limit)
    for message_id in message_ids:
        enqueue(message_id)
    if message_ids:
        log.info("scheduled messages released", extra={"count": len(message_ids)})
    return message_ids


class Scheduler:
    """Runs jobs only while holding the leader lock, so a second copy idles harmlessly."""

    def __init__(self, deps: WorkerDeps, *, poll_s: float = 5.0) -> None:
        self.deps = deps
        self.poll_s = poll_s
        self.is_leader = False
        self._stop = threading.Event()
        self._jobs = BackgroundScheduler(timezone="UTC")
        self._ops = SchedulerRecorder(deps.redis, deps.settings.QUEUE_PREFIX)  # ops console
        self._ops.attach(self._jobs)
        every_s = deps.settings.INBOX_SWEEP_EVERY_S
        self._add("sweep", lambda: sweep(deps), every_s)
        self._add(
            "scheduled_sends",
            lambda: send_due_messages(deps.db, send_message.send),
            SCHEDULED_SEND_EVERY_S,
        )
        self._add("campaign_starts", lambda: start_due(deps), TICK_EVERY_S)
        self._add("campaign_ticks", lambda: enqueue_ticks(deps), TICK_EVERY_S)
        self._add("bot_inactivity", lambda: time_out_idle_bots(deps), BOT_TIMEOUT_EVERY_S)
        self._add("retention", lambda: run_retention(deps), RETENTION_EVERY_S)
        self._add("distribute_waiting", lambda: distribute_all(deps), DISTRIBUTE_EVERY_S)
        self._add("auto_close", lambda: close_inactive(deps), AUTO_CLOSE_EVERY_S)
        self._add("sla_checks", lambda: check_slas(deps), SLA_EVERY_S)

    def _add(self, name: str, fn: Callable[[], object], every_s: int) -> None:
        self._jobs.add_job(fn, "interval", seconds=every_s, id=name, max_instances=1, coalesce=True)

    def run(self) -> None:
        """Block: lead whenever the leader lock can be had, until asked to stop.

        A lost database session (PostgreSQL restarted) is a lost lock: step down and campaign
        again once the database is back, rather than exit and leave nobody sweeping.
        """
        try:
            while not self._stop.is_set():
                try:
                    self._lead()
                except (DBAPIError, DatabaseUnavailableError) as exc:
                    log.warning(
                        "scheduler lost its database session", extra={"error": type(exc).__name__}
                    )
                    self._stop.wait(self.poll_s)
        finally:
            if self._jobs.running:
                self._jobs.shutdown(wait=False)

    def _lead(self) -> None:
        """Wait for the leader lock, then run the jobs until stopped or the session is lost."""
        with self.deps.db.connect() as conn:
            got = False
            while not self._stop.is_set():
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}
                ).scalar_one()
                conn.commit()
                if got:
                    break
                self._stop.wait(self.poll_s)
            if not got:
                return
            self.is_leader = True
            log.info("scheduler is leader", extra={})
            if self._jobs.state == STATE_PAUSED:
                self._jobs.resume()
            else:
                self._jobs.start()
            self._ops.became_leader(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            try:
                self._catch_up()
                while not self._stop.wait(self.poll_s):
                    conn.execute(text("SELECT 1")).scalar_one()  # the lock lives with this session
                    conn.commit()
            finally:
                self._jobs.pause()
                self.is_leader = False
                # The lock belongs to the session, not the checkout: back in the pool, this
                # connection would keep every other copy from ever leading.
                conn.invalidate()

    def _catch_up(self) -> None:
        """Sweep at once on taking the lead (work left by a previous run). A failure (the
        broker still down after an outage, typically) is logged, not fatal: the sweep job
        runs again on its interval, and a scheduler that exited would lead nothing."""
        try:
            sweep(self.deps)
        except Exception:
            log.exception("catch-up sweep failed; the sweep job will run it again")

    def stop(self) -> None:
        self._stop.set()
