"""Redis keys of the operations state that workers and the scheduler write and ops reads.

All live under the deployment's QUEUE_PREFIX, next to the broker's own keys.
"""

from __future__ import annotations

# Per-minute counters outlive the longest history an operator is shown.
COUNTER_TTL_S = 2 * 3600
# A worker missing this long is gone; it writes every HEARTBEAT_EVERY_S.
HEARTBEAT_EVERY_S = 5
HEARTBEAT_TTL_S = 20
SCHEDULER_TTL_S = 7 * 86_400


def minute_of(epoch_s: float) -> int:
    return int(epoch_s // 60)


def counter_key(prefix: str, queue: str, minute: int) -> str:
    """A hash {processed, failed} of one queue's messages finished in one minute."""
    return f"{prefix}:ops:rate:{queue}:{minute}"


def worker_key(prefix: str, worker_id: str) -> str:
    """One worker process's heartbeat (JSON), expiring unless refreshed."""
    return f"{prefix}:ops:worker:{worker_id}"


def worker_pattern(prefix: str) -> str:
    return f"{prefix}:ops:worker:*"


def scheduler_jobs_key(prefix: str) -> str:
    """A hash job name → JSON of its last and next run."""
    return f"{prefix}:ops:scheduler:jobs"


def scheduler_leader_key(prefix: str) -> str:
    """JSON naming the process that last became scheduler leader."""
    return f"{prefix}:ops:scheduler:leader"
