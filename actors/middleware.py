"""Retries with exponential backoff and jitter, and dead letters for what cannot succeed."""

from __future__ import annotations

import json
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from engine.errors import PermanentError, RateLimitedError, RetryableError
from engine.metrics import DEAD_LETTERS, RETRIES
from engine.store.dead_letters import NewDeadLetter

log = logging.getLogger(__name__)

DeadLetterRecorder = Callable[[NewDeadLetter], None]
MAX_THROTTLES = 10_000


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 8
    min_backoff_ms: int = 500
    max_backoff_ms: int = 300_000

    def backoff_ms(self, attempt: int) -> int:
        """Full-jitter exponential backoff: uniform in [min, min·2^attempt], capped."""
        ceiling = min(self.max_backoff_ms, self.min_backoff_ms * (2 ** min(attempt, 30)))
        return random.randint(self.min_backoff_ms, max(self.min_backoff_ms, ceiling))


class RetriesWithDeadLetters(Middleware):
    """Replaces dramatiq's Retries: PermanentError dead-letters at once; anything else retries
    (honouring RetryableError.delay_ms) until max_retries, then dead-letters.

    If the dead letter cannot be written (database down) the message is retried later instead:
    a failure is never dropped on the floor.
    """

    def __init__(self, *, policy: RetryPolicy, recorder: DeadLetterRecorder) -> None:
        self.policy = policy
        self.recorder = recorder

    @property
    def actor_options(self) -> set[str]:
        return {"max_retries", "throws"}

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        actor = broker.get_actor(message.actor_name)
        if isinstance(exception, RateLimitedError) and self._throttle(broker, message, exception):
            return
        retries = int(message.options.get("retries", 0))
        max_retries = int(actor.options.get("max_retries", self.policy.max_retries))
        context = {"actor": message.actor_name, "message_id": message.message_id}
        exhausted = isinstance(exception, PermanentError) or retries >= max_retries
        labels = {"actor": message.actor_name, "queue": q_name(message.queue_name)}
        if exhausted and self._record(message, exception, attempts=retries + 1):
            message.fail()
            DEAD_LETTERS.labels(**labels).inc()
            log.info(
                "dead-lettered",
                extra={**context, "attempt": retries + 1, "error": type(exception).__name__},
            )
            return
        delay_ms = self.policy.backoff_ms(retries)
        if isinstance(exception, RetryableError) and exception.delay_ms is not None:
            delay_ms = max(exception.delay_ms, 0)
        message.options["retries"] = retries + 1
        RETRIES.labels(**labels).inc()
        log.warning(
            "retrying",
            extra={
                **context,
                "attempt": retries + 1,
                "delay_ms": delay_ms,
                "error": type(exception).__name__,
            },
        )
        broker.enqueue(message._message, delay=delay_ms)

    def _throttle(
        self, broker: dramatiq.Broker, message: MessageProxy, exception: RateLimitedError
    ) -> bool:
        """Waiting for a rate-limit token is not a failed attempt: requeue without counting it.

        Bounded all the same, so a bucket that never refills ends as a dead letter.
        """
        throttled = int(message.options.get("throttled", 0))
        if throttled >= MAX_THROTTLES:
            return False
        message.options["throttled"] = throttled + 1
        delay_ms = exception.delay_ms if exception.delay_ms is not None else 1_000
        log.debug("throttled", extra={"actor": message.actor_name, "delay_ms": delay_ms})
        broker.enqueue(message._message, delay=max(delay_ms, 1))
        return True

    def _record(self, message: MessageProxy, exception: BaseException, *, attempts: int) -> bool:
        payload = dict(message.asdict())
        options = dict(payload.get("options") or {})
        options.pop("retries", None)
        options.pop("throttled", None)
        options.pop("traceback", None)
        payload["options"] = options
        tenant = message.options.get("tenant_id")
        try:
            self.recorder(
                NewDeadLetter(
                    tenant_id=int(tenant) if tenant is not None else None,
                    actor=message.actor_name,
                    queue=message.queue_name,
                    message_id=message.message_id,
                    payload_json=json.dumps(payload, default=str),
                    error_class=type(exception).__name__,
                    error_message=str(exception)[:2000] or type(exception).__name__,
                    traceback="".join(traceback.format_exception(exception))[-8000:],
                    attempts=attempts,
                )
            )
        except Exception:
            log.exception("could not record dead letter; will retry the message", extra={})
            return False
        return True


def is_last_attempt(default_max_retries: int) -> bool:
    """Whether the message being processed on this thread gets no further retry."""
    from dramatiq.middleware import CurrentMessage

    message = CurrentMessage.get_current_message()
    if message is None:
        return True
    broker = dramatiq.get_broker()
    actor = broker.get_actor(message.actor_name)
    max_retries = int(actor.options.get("max_retries", default_max_retries))
    return int(message.options.get("retries", 0)) >= max_retries
