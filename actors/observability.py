"""One log line and a few metrics per broker message; correlation ids carried across sends."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from engine.logs import CORRELATION_KEY, bind_context, clear_context, context_options
from engine.metrics import ACTOR_MESSAGES, ACTOR_SECONDS, STAGE_SECONDS, forget_process

log = logging.getLogger(__name__)

# Actors on these queues are the pipelines' `deliver` stage: provider sends, realtime
# events and tenant webhooks.
DELIVER_QUEUES = frozenset({"deliver", "outbound", "webhooks"})


class WorkObservability(Middleware):
    """Binds the unit of work's ids (actor, queue, attempt, tenant, correlation id) to every
    line logged while a message is processed, then logs one summary line with its outcome and
    duration and counts it. Messages sent meanwhile inherit the correlation id.

    Declared first among the broker's middleware: its `before_` hooks run first and its
    `after_` hooks last, so the retry and dead-letter lines carry the same ids.
    """

    def __init__(self) -> None:
        self._started = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: Message[object], delay: int) -> None:
        context_options(message.options, [CORRELATION_KEY])

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        clear_context()
        options = message.options
        bind_context(
            actor=message.actor_name,
            queue=q_name(message.queue_name),
            attempt=int(options.get("retries", 0)) + 1,
            tenant_id=options.get("tenant_id"),
            correlation_id=options.get(CORRELATION_KEY),
        )
        self._started.at = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        outcome = "ok" if exception is None else "failed"
        self._finish(message, outcome, error=None if exception is None else exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._finish(message, "skipped", error=None)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        forget_process()

    def _finish(self, message: MessageProxy, outcome: str, *, error: BaseException | None) -> None:
        started = getattr(self._started, "at", None)
        elapsed_s = time.perf_counter() - started if started is not None else 0.0
        queue = q_name(message.queue_name)
        ACTOR_MESSAGES.labels(actor=message.actor_name, queue=queue, outcome=outcome).inc()
        ACTOR_SECONDS.labels(actor=message.actor_name, queue=queue).observe(elapsed_s)
        if queue.rsplit(".", 1)[-1] in DELIVER_QUEUES:
            STAGE_SECONDS.labels(stage="deliver").observe(elapsed_s)
        extra: dict[str, object] = {"outcome": outcome, "duration_ms": round(elapsed_s * 1000, 1)}
        if error is not None:
            extra["error"] = type(error).__name__
        log.info("message processed", extra=extra)
        self._started.at = None
        clear_context()
