"""How many messages each queue holds, asked of the broker itself (Redis or RabbitMQ).

Redis (dramatiq's RedisBroker, keys under its namespace):
  `<ns>:<q>` list of ready message ids (FIFO: the head is the oldest), `<ns>:<q>.msgs` hash of
  every message not yet acked (ready + fetched by a worker), and the same pair for the delay
  queue `<q>.DQ`, whose messages a worker holds in memory until their eta. So in-flight is
  hlen(msgs) - llen(list), and delayed is hlen(`<q>.DQ.msgs`).
RabbitMQ: a passive declare tells the ready count of `<q>` and `<q>.DQ`. Unacked (in-flight)
  counts and message ages are not exposed over AMQP (only through the management plugin), so
  they are None; delayed messages already prefetched by a worker are not counted either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pika
import redis.asyncio as aioredis
from dramatiq.common import dq_name
from pika.exceptions import ChannelClosedByBroker

from engine.ops.models import QueueDepth

RABBITMQ_NOTE = (
    "RabbitMQ: in-flight (unacked) counts and message ages need the management API; "
    "shown as unknown. Delayed counts exclude delayed messages a worker has prefetched."
)


async def redis_depths(
    client: aioredis.Redis, namespace: str, queues: Sequence[str], *, now_ms: int
) -> dict[str, QueueDepth]:
    pipe = client.pipeline(transaction=False)
    for q in queues:
        base = f"{namespace}:{q}"
        pipe.llen(base)
        pipe.hlen(f"{base}.msgs")
        pipe.hlen(f"{namespace}:{dq_name(q)}.msgs")
        pipe.lindex(base, 0)
    raw = await pipe.execute()
    depths: dict[str, QueueDepth] = {}
    for i, q in enumerate(queues):
        ready, unacked, delayed, head = raw[4 * i : 4 * i + 4]
        oldest_ms = await _enqueued_ms(client, f"{namespace}:{q}.msgs", head)
        depths[q] = QueueDepth(
            ready=int(ready),
            delayed=int(delayed),
            in_flight=max(int(unacked) - int(ready), 0),
            oldest_age_s=None if oldest_ms is None else max(now_ms - oldest_ms, 0) / 1000,
        )
    return depths


async def _enqueued_ms(client: aioredis.Redis, messages_key: str, head: object) -> int | None:
    if head is None:
        return None
    data = await client.hget(messages_key, head)  # type: ignore[arg-type]
    if data is None:  # fetched between the two reads
        return None
    try:
        return int(json.loads(data)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return None


def rabbitmq_depths(amqp_url: str, queues: Sequence[str]) -> dict[str, QueueDepth]:
    """Ready counts by passive declare; a queue not declared yet counts as empty."""
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 5
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        depths: dict[str, QueueDepth] = {}
        for q in queues:
            ready, channel = _message_count(connection, channel, q)
            delayed, channel = _message_count(connection, channel, dq_name(q))
            depths[q] = QueueDepth(ready=ready, delayed=delayed, in_flight=None, oldest_age_s=None)
        return depths
    finally:
        connection.close()


def _message_count(
    connection: pika.BlockingConnection,
    channel: pika.adapters.blocking_connection.BlockingChannel,
    queue: str,
) -> tuple[int, pika.adapters.blocking_connection.BlockingChannel]:
    """The queue's ready count, and a usable channel (a 404 closes the one it used)."""
    try:
        ok = channel.queue_declare(queue, passive=True)
    except ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return 0, connection.channel()
    return int(ok.method.message_count), channel
