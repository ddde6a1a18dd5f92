"""Middleware that lets operators see workers: per-minute throughput and worker heartbeats.

Both write to Redis under the deployment's prefix (engine/ops/keys.py). A Redis hiccup here
must never fail a message, so every write is best effort.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from engine.ops import keys

log = logging.getLogger(__name__)


class QueueCounters(Middleware):
    """Counts messages finished per queue and minute: processed, or failed (any attempt)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        field = "processed" if exception is None else "failed"
        key = keys.counter_key(self.prefix, q_name(message.queue_name), keys.minute_of(time.time()))
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(key, field, 1)
            pipe.expire(key, keys.COUNTER_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("queue counter not written", extra={"error": type(exc).__name__})


class WorkerHeartbeats(Middleware):
    """Every few seconds, this worker process's identity and the messages it is running."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._current: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._identity: dict[str, object] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        self._identity = {
            "id": self.worker_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "threads": worker.worker_threads,
            "queues": sorted(q for q in queues if q == q_name(q)),
            "started_at": _now(),
        }
        self._stop.clear()
        threading.Thread(target=self._beat, name="ops-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        with contextlib.suppress(redis.RedisError):  # the key expires on its own anyway
            self.client.delete(keys.worker_key(self.prefix, self.worker_id))

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        current = {
            "actor": message.actor_name,
            "message_id": message.message_id,
            "queue": q_name(message.queue_name),
            "started_at": _now(),
        }
        with self._lock:
            self._current[threading.get_ident()] = current

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._current.pop(threading.get_ident(), None)

    after_skip_message = after_process_message

    def _beat(self) -> None:
        while True:
            self.write_beat()
            if self._stop.wait(keys.HEARTBEAT_EVERY_S):
                return

    def write_beat(self) -> None:
        with self._lock:
            current = list(self._current.values())
        beat = {**self._identity, "seen_at": _now(), "current": current}
        try:
            self.client.set(
                keys.worker_key(self.prefix, self.worker_id),
                json.dumps(beat),
                ex=keys.HEARTBEAT_TTL_S,
            )
        except redis.RedisError as exc:
            log.debug("heartbeat not written", extra={"error": type(exc).__name__})


def ops_middleware(redis_url: str, prefix: str) -> list[Middleware]:
    """The operations middleware for a broker whose workers report to `redis_url`."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return [QueueCounters(client, prefix), WorkerHeartbeats(client, prefix)]


def _now() -> str:
    return datetime.now(UTC).isoformat()
