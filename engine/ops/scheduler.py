"""Scheduler state: who holds the leader lock, and each job's last and next run."""

from __future__ import annotations

import json
from datetime import datetime

import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db import async_system_tx
from engine.ops import keys
from engine.ops.models import JobRun, Leader, SchedulerStatus

# A bigint advisory lock shows in pg_locks as (classid, objid) = (high, low) 32 bits.
_HOLDER = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND classid = :hi AND objid = :lo "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def lock_holder(conn: Connection, lock_key: int) -> int | None:
    """The database backend pid holding the leader lock, if anyone does."""
    row = conn.execute(_HOLDER, {"hi": lock_key >> 32, "lo": lock_key & 0xFFFFFFFF}).first()
    return None if row is None else int(row[0])


async def read_scheduler(
    client: aioredis.Redis, db: AsyncEngine, prefix: str, lock_key: int
) -> SchedulerStatus:
    async with async_system_tx(db) as conn:
        holder = await conn.run_sync(lambda c: lock_holder(c, lock_key))
    recorded = _json(await client.get(keys.scheduler_leader_key(prefix)))
    # The record names the host only while it still matches the lock's holder.
    same = holder is not None and recorded.get("backend_pid") == holder
    leader = Leader(
        lock_held=holder is not None,
        backend_pid=holder,
        hostname=str(recorded["hostname"]) if same else None,
        pid=int(str(recorded["pid"])) if same else None,
        since=datetime.fromisoformat(str(recorded["since"])) if same else None,
    )
    jobs = []
    for name, raw in sorted((await client.hgetall(keys.scheduler_jobs_key(prefix))).items()):
        try:
            jobs.append(JobRun.model_validate({**_json(raw), "name": _text(name)}))
        except ValidationError:
            continue
    return SchedulerStatus(leader=leader, jobs=tuple(jobs))


def _json(raw: object) -> dict[str, object]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)  # type: ignore[arg-type]
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
