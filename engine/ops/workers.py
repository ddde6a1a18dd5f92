"""Live workers, from the heartbeats WorkerHeartbeats writes (expired keys are gone workers)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from pydantic import ValidationError

from engine.ops import keys
from engine.ops.models import WorkerBeat


async def read_workers(client: aioredis.Redis, prefix: str) -> list[WorkerBeat]:
    names = [name async for name in client.scan_iter(match=keys.worker_pattern(prefix))]
    if not names:
        return []
    beats = []
    for raw in await client.mget(names):
        if raw is None:  # expired between scan and read
            continue
        try:
            beats.append(WorkerBeat.model_validate(json.loads(raw)))
        except (ValueError, ValidationError):
            continue  # a beat from another version of the engine: not ours to show
    return sorted(beats, key=lambda b: (b.hostname, b.pid, b.id))
