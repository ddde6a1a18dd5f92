"""A batch of pending outbound messages: claim ▸ route ▸ pace ▸ deliver (concurrently) ▸ ack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from adapters.base import OutboundAdapter
from engine.db import system_tx
from engine.errors import PermanentError
from engine.events import ChannelType
from engine.http_pool import HttpPool
from engine.store.send_batch import ClaimedSend, claim_sends, release_sends
from pipelines.outbound.pace import (
    Bucket,
    Limits,
    Ready,
    Resend,
    penalize_rate_limited,
    take_tokens,
)
from pipelines.outbound.send import Failing, Refused, Sent, Throttled, Verdict, attempt, route
from pipelines.outbound.settle import SendPolicy, decide, settle

log = logging.getLogger(__name__)

# A batch stops calling the provider after this long (the rest go back at once), so it stays
# well inside the send lease (SEND_LEASE_S) and the actor's time limit even when a provider
# hangs until every request times out.
SEND_BUDGET_S = 60.0


@dataclass
class BatchOutcome:
    """What became of each id asked for: `statuses` (sent, delivered…, failed, retrying,
    throttled, deferred, skipped), the re-sends to enqueue and the outbox rows to publish."""

    statuses: dict[int, str] = field(default_factory=dict)
    resends: list[Resend] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    provider_ids: dict[int, str] = field(default_factory=dict)
    errors: dict[int, Exception] = field(default_factory=dict)
    waits_ms: dict[int, int] = field(default_factory=dict)


def run_batch(
    message_ids: Sequence[int],
    *,
    db: Engine,
    adapters: Mapping[ChannelType, OutboundAdapter],
    http: httpx.Client,
    pool: HttpPool | None,
    bucket: Bucket,
    limits: Limits,
    policy: SendPolicy,
    reserved_channel_id: int | None = None,
) -> BatchOutcome:
    """Send every still-pending message among `message_ids`, each at most once.

    Two transactions whatever the batch size: the claim (one statement) and the settlement.
    Provider calls run concurrently on `pool` (inline when None or for a single send). Per
    message outcomes never raise: failures become failed rows and dead letters, retries and
    throttled sends come back as `resends` for the caller to enqueue. Raises RetryableError
    (DatabaseUnavailableError) when the database is down: retry the whole batch, which the
    lease makes safe (claimed-and-sent messages are never claimed again).
    """
    with system_tx(db) as conn:
        jobs = claim_sends(conn, message_ids)
    outcome = BatchOutcome(statuses=dict.fromkeys(message_ids, "skipped"))
    if not jobs:
        return outcome
    verdicts: dict[int, Verdict] = {}
    ready = _route(jobs, adapters, verdicts)
    try:
        go, throttled = take_tokens(
            ready,
            bucket=bucket,
            limits=limits,
            reserved_channel_id=reserved_channel_id,
            reserve=policy.reserve_slots,
        )
    except Exception:
        # Nothing reached a provider yet: give every claim back, uncounted, so the retry of
        # this batch finds them free instead of leased for SEND_LEASE_S.
        _release_all(db, jobs)
        raise
    verdicts |= throttled
    verdicts |= _deliver_all(go, db=db, http=http, pool=pool)
    plan = decide(jobs, verdicts, policy)
    settled = settle(db, plan)
    _penalize(bucket, jobs, verdicts)
    _summarize(outcome, jobs, verdicts)
    outcome.statuses |= {a.message_id: a.status for a in settled.acked}
    outcome.statuses |= {f.message_id: "failed" for f in settled.failed}
    outcome.resends = plan.resends
    outcome.outbox_ids = settled.outbox_ids
    return outcome


def _route(
    jobs: Sequence[ClaimedSend],
    adapters: Mapping[ChannelType, OutboundAdapter],
    verdicts: dict[int, Verdict],
) -> list[Ready]:
    """The sends that may go out; a Refused verdict for the others (no tokens taken)."""
    now = datetime.now(UTC)
    ready: list[Ready] = []
    for job in jobs:
        adapter = adapters.get(job.channel_type)
        try:
            if adapter is None:
                raise PermanentError(f"no adapter can send on {job.channel_type} channels")
            ready.append(Ready(job, adapter, route(job, now=now)))
        except PermanentError as exc:
            verdicts[job.message_id] = Refused(exc)
    return ready


def _release_all(db: Engine, jobs: Sequence[ClaimedSend]) -> None:
    with system_tx(db) as conn:
        release_sends(conn, [(job.message_id, True) for job in jobs])


def _penalize(bucket: Bucket, jobs: Sequence[ClaimedSend], verdicts: Mapping[int, Verdict]) -> None:
    """After the commit: a penalty that cannot be recorded only costs a sooner 429 again, and
    must not turn the committed batch into a failed one."""
    try:
        penalize_rate_limited(bucket, jobs, verdicts)
    except Exception:
        log.warning("could not slow the channel's bucket after a 429", exc_info=True)


def _deliver_all(
    go: Sequence[Ready], *, db: Engine, http: httpx.Client, pool: HttpPool | None
) -> dict[int, Verdict]:
    """Every provider call of the batch: concurrently on `pool`'s threads (each with its own
    client), or one after another on `http` when there is no pool or a single send."""
    deadline = time.monotonic() + SEND_BUDGET_S

    def one(item: Ready, client: httpx.Client) -> Verdict:
        return attempt(
            item.adapter,
            item.job,
            item.job.channel,
            item.recipient,
            db=db,
            http=client,
            deadline=deadline,
        )

    # A person's messages go one after another, oldest first, so a bot's greeting reaches
    # them before its menu; different people's go side by side.
    conversations: dict[tuple[int, str], list[Ready]] = {}
    for item in sorted(go, key=lambda i: i.job.message_id):
        conversations.setdefault((item.job.channel.id, item.recipient), []).append(item)
    if pool is None or len(conversations) <= 1:
        return {i.job.message_id: one(i, http) for items in conversations.values() for i in items}
    # One task per pool thread, each taking the next conversation until none is left: a slow
    # send holds up only its own thread, and a hundred sends cost a handful of hand-offs.
    pending = iter(conversations.values())
    lock = threading.Lock()
    verdicts: dict[int, Verdict] = {}

    def drain(client: httpx.Client) -> None:
        while True:
            with lock:
                items = next(pending, None)
            if items is None:
                return
            for item in items:
                verdicts[item.job.message_id] = one(item, client)

    for task in [pool.submit(drain) for _ in range(min(pool.threads, len(conversations)))]:
        task.result()
    return verdicts


def _summarize(
    outcome: BatchOutcome, jobs: Sequence[ClaimedSend], verdicts: Mapping[int, Verdict]
) -> None:
    for job in jobs:
        verdict = verdicts[job.message_id]
        if isinstance(verdict, Sent):
            outcome.provider_ids[job.message_id] = verdict.result.provider_message_id
        elif isinstance(verdict, Throttled):
            outcome.statuses[job.message_id] = "throttled"
            outcome.waits_ms[job.message_id] = verdict.delay_ms
        elif isinstance(verdict, Refused):
            outcome.statuses[job.message_id] = "failed"
            outcome.errors[job.message_id] = verdict.error
        elif isinstance(verdict, Failing):
            outcome.statuses[job.message_id] = "retrying"  # "failed" once settled as such
            outcome.errors[job.message_id] = verdict.error
        else:
            outcome.statuses[job.message_id] = "deferred"
