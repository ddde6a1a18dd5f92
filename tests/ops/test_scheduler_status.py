"""GET /ops/scheduler names the leader holding the lock and each job's last and next run."""

from __future__ import annotations

import os
import socket
from typing import Any

from tests.support.harness import RunningEngine, wait_until
from tests.support.ops import ops_get
from tests.support.scheduler import scheduler_thread


def _status(web: RunningEngine) -> dict[str, Any]:
    r = ops_get(web, "/ops/scheduler")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_leader_and_job_runs_are_reported_and_the_lock_loss_shows(
    idle_engine: RunningEngine, database_url: str, redis_url: str, queue_prefix: str
) -> None:
    assert _status(idle_engine) == {
        "leader": {
            "lock_held": False,
            "backend_pid": None,
            "hostname": None,
            "pid": None,
            "since": None,
        },
        "jobs": [],
    }
    with scheduler_thread(database_url, redis_url, queue_prefix):
        wait_until(lambda: _status(idle_engine)["leader"]["lock_held"], 10, "a leader")
        leader = _status(idle_engine)["leader"]
        assert (leader["hostname"], leader["pid"]) == (socket.gethostname(), os.getpid())
        jobs = {j["name"]: j for j in _status(idle_engine)["jobs"]}
        assert jobs["sweep"]["every_s"] == 3600 and jobs["sweep"]["next_run_at"] is not None
        wait_until(
            lambda: any(j["last_outcome"] == "ok" for j in _status(idle_engine)["jobs"]),
            15,
            "a job to run",
        )
        ran = next(j for j in _status(idle_engine)["jobs"] if j["last_outcome"] == "ok")
        assert ran["last_run_at"] < ran["next_run_at"]
    wait_until(
        lambda: not _status(idle_engine)["leader"]["lock_held"], 10, "the lock to be released"
    )
    assert _status(idle_engine)["leader"]["hostname"] is None
