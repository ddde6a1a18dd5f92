"""ack for a batch of sends: what each verdict means for its message, stored in one transaction."""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from engine.db import system_tx
from engine.errors import DatabaseUnavailableError, RateLimitedError, RetryableError
from engine.metrics import DEAD_LETTERS
from engine.store.dead_letters import NewDeadLetter, insert_dead_letters
from engine.store.send_batch import (
    Ack,
    Acked,
    ClaimedSend,
    Failed,
    Failure,
    ack_sends,
    fail_sends,
    release_sends,
)
from pipelines.campaigns.progress import follow_message_statuses
from pipelines.outbound.pace import Resend, throttled_resends
from pipelines.outbound.send import Deferred, Failing, Refused, Sent, Throttled, Verdict
from pipelines.outbound.send_metrics import count_verdict

log = logging.getLogger(__name__)

# A batch whose sends reached the provider must not lose their acknowledgement to a short
# database blip: the settling transaction is tried again after these pauses.
SETTLE_RETRY_PAUSES_S = (0.2, 1.0)


@dataclass(frozen=True)
class SendPolicy:
    """How a batch treats retryable failures, and how its dead letters are filed."""

    backoff_ms: Callable[[int], int]  # the jittered wait before retry n (0-based)
    max_attempts: int | None  # a retryable failure on this attempt fails it; None: never
    dead_letter_actor: str = "send_message"
    dead_letter_queue: str = "outbound"
    record_dead_letters: bool = True  # False: the caller raises, the middleware records
    reserve_slots: bool = True  # False: throttled sends get a wait, not a reserved slot

    def is_final(self, job: ClaimedSend) -> bool:
        return self.max_attempts is not None and job.attempt >= self.max_attempts


@dataclass
class Settlement:
    acks: list[Ack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    releases: list[tuple[int, bool]] = field(default_factory=list)  # (message id, uncount)
    dead_letters: list[NewDeadLetter] = field(default_factory=list)
    resends: list[Resend] = field(default_factory=list)
    campaign_sends: dict[int, list[int]] = field(default_factory=dict)  # tenant → message ids


@dataclass(frozen=True)
class Settled:
    acked: list[Acked]
    failed: list[Failed]
    outbox_ids: list[int]


def decide(
    jobs: Sequence[ClaimedSend], verdicts: Mapping[int, Verdict], policy: SendPolicy
) -> Settlement:
    """Acks, failures (with dead letters), releases and re-sends for the verdicts; pure apart
    from counting each verdict in the delivery metrics.

    Sent → ack. Refused → failed. Failing → released (the attempt stays counted) and sent again
    after a backoff from its attempt count, or failed on the last attempt; a provider's 429 is
    released uncounted and sent again at its retry-after. Throttled/Deferred → released
    without counting the attempt and sent again at their slot / at once.
    """
    plan = Settlement()
    retries: dict[int, list[int]] = {}  # delay → ids
    draws: dict[int, int] = {}  # attempt → backoff drawn
    throttled: list[tuple[ClaimedSend, Throttled]] = []
    deferred: list[int] = []
    for job in jobs:
        verdict = verdicts[job.message_id]
        fails = _fails(job, verdict, policy)
        if isinstance(verdict, Sent):
            plan.acks.append(
                Ack(
                    message_id=job.message_id,
                    channel_id=job.channel_id,
                    provider_message_id=verdict.result.provider_message_id,
                )
            )
        elif isinstance(verdict, Refused | Failing) and fails:
            _fail(plan, job, verdict.error, policy)
        elif isinstance(verdict, Failing):
            # A provider's 429 slows the channel's bucket (see pace) rather than burning one
            # of the message's attempts: it goes back uncounted, at the provider's retry-after.
            rate_limited = isinstance(verdict.error, RateLimitedError)
            plan.releases.append((job.message_id, rate_limited))
            delay_ms = _retry_delay_ms(job, verdict.error, policy, draws)
            retries.setdefault(delay_ms, []).append(job.message_id)
        elif isinstance(verdict, Throttled):
            plan.releases.append((job.message_id, True))
            throttled.append((job, verdict))
        elif isinstance(verdict, Deferred):
            plan.releases.append((job.message_id, True))
            deferred.append(job.message_id)
        count_verdict(job, verdict, final=fails)
        if job.send_type == "campaign" and isinstance(verdict, Sent | Refused | Failing):
            plan.campaign_sends.setdefault(job.tenant_id, []).append(job.message_id)
    plan.resends += [Resend(ids, delay_ms) for delay_ms, ids in sorted(retries.items())]
    plan.resends += throttled_resends(throttled)
    if deferred:
        plan.resends.append(Resend(deferred, 0))
    return plan


def _fails(job: ClaimedSend, verdict: Verdict, policy: SendPolicy) -> bool:
    """Whether this verdict ends the message as failed: refused, or failing on its last
    attempt (a provider's 429 never ends it; it is released uncounted)."""
    if isinstance(verdict, Refused):
        return True
    return (
        isinstance(verdict, Failing)
        and policy.is_final(job)
        and not isinstance(verdict.error, RateLimitedError)
    )


def _retry_delay_ms(
    job: ClaimedSend, error: Exception, policy: SendPolicy, draws: dict[int, int]
) -> int:
    """The provider's retry-after when it gave one, else backoff from the attempts so far
    (jittered once per attempt count, so a batch's retries go back together)."""
    if isinstance(error, RetryableError) and error.delay_ms is not None:
        return max(error.delay_ms, 0)
    if job.attempt not in draws:
        draws[job.attempt] = policy.backoff_ms(max(job.attempt - 1, 0))
    return draws[job.attempt]


def _fail(plan: Settlement, job: ClaimedSend, error: Exception, policy: SendPolicy) -> None:
    code = getattr(error, "code", None)
    plan.failures.append(Failure(message_id=job.message_id, code=code, reason=str(error)))
    if policy.record_dead_letters:
        plan.dead_letters.append(_dead_letter(job, error, policy))
        DEAD_LETTERS.labels(actor=policy.dead_letter_actor, queue=policy.dead_letter_queue).inc()
    log.info(
        "send failed",
        extra={
            "message_id": job.message_id,
            "tenant_id": job.tenant_id,
            "code": code,
            "attempt": job.attempt,
            "error": type(error).__name__,
        },
    )


def _dead_letter(job: ClaimedSend, error: Exception, policy: SendPolicy) -> NewDeadLetter:
    """Filed as the one-message send it was (requeue sends exactly that message again)."""
    message_id = str(uuid.uuid4())
    payload = {
        "queue_name": policy.dead_letter_queue,
        "actor_name": policy.dead_letter_actor,
        "args": [job.message_id],
        "kwargs": {},
        "options": {"tenant_id": job.tenant_id},
        "message_id": message_id,
        "message_timestamp": int(time.time() * 1000),
    }
    return NewDeadLetter(
        tenant_id=job.tenant_id,
        actor=policy.dead_letter_actor,
        queue=policy.dead_letter_queue,
        message_id=message_id,
        payload_json=json.dumps(payload),
        error_class=type(error).__name__,
        error_message=str(error)[:2000] or type(error).__name__,
        traceback="".join(traceback.format_exception(error))[-8000:],
        attempts=job.attempt,
    )


def settle(db: Engine, plan: Settlement) -> Settled:
    """Store the settlement in one transaction: acks (one statement), failures, releases,
    dead letters, and the campaign rows that follow these messages.

    Idempotent per message by the claim: only claimed (leased) messages are in a plan.
    Raises DatabaseUnavailableError when the database stays away (the batch is retried).
    """
    for pause_s in (*SETTLE_RETRY_PAUSES_S, None):
        try:
            return _settle_once(db, plan)
        except DatabaseUnavailableError:
            if pause_s is None:
                raise
            log.warning("settling sends failed; trying again", extra={"pause_s": pause_s})
            time.sleep(pause_s)
    raise AssertionError("unreachable")


def _settle_once(db: Engine, plan: Settlement) -> Settled:
    with system_tx(db) as conn:
        acked = ack_sends(conn, plan.acks)
        failed = fail_sends(conn, plan.failures)
        release_sends(conn, plan.releases)
        insert_dead_letters(conn, plan.dead_letters)
        campaign_outbox: list[int] = []
        for tenant_id, message_ids in sorted(plan.campaign_sends.items()):
            campaign_outbox += follow_message_statuses(
                conn, tenant_id=tenant_id, message_ids=message_ids
            )
    outbox_ids = [a.outbox_id for a in acked] + [f.outbox_id for f in failed] + campaign_outbox
    return Settled(acked=acked, failed=failed, outbox_ids=outbox_ids)
