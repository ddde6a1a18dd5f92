"""Batched sends on a real database and Redis bucket, with a scripted provider: mixed outcomes
in one batch, duplicate deliveries, throttling and statuses that beat the ack."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from engine.db import system_tx, tenant_tx
from engine.errors import ProviderRejectedError, ProviderUnavailableError, RateLimitedError
from engine.events import ChannelConnection, ChannelType, OutboundMessage, SendResult
from engine.http_pool import HttpPool
from engine.ratelimit import TokenBucket
from pipelines.outbound import BatchOutcome, Resend, SendPolicy, SendRequest, record_send, run_batch
from tests.support.campaigns import seed_audience
from tests.support.harness import Seeded, seed_whatsapp

UNPACED = (10_000.0, 10_000)
BACKOFF_MS = 25


class ScriptedProvider:
    """A WhatsApp adapter whose answer depends on the body; records every call it gets.

    "reject" → ProviderRejectedError 131026; "flaky" → 503 on its first call, then accepted;
    "limited" → 429 (retry after 1.2 s) on its first call, then accepted; anything else is
    accepted after `latency_s`.
    """

    channel_type = ChannelType.WHATSAPP

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        with self._lock:
            self.calls.append(message.message_id)
            earlier = self.calls.count(message.message_id) - 1
        time.sleep(self.latency_s)
        if message.body == "reject":
            raise ProviderRejectedError("(#131026) Message undeliverable", code="131026")
        if message.body == "flaky" and earlier == 0:
            raise ProviderUnavailableError("provider answered 503")
        if message.body == "limited" and earlier == 0:
            raise RateLimitedError("provider answered 429", delay_ms=1200)
        return SendResult(provider_message_id=f"wamid.{message.message_id}")

    def fetch_media(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@pytest.fixture
def acme(clean_db: Engine) -> Seeded:
    return seed_whatsapp(clean_db)


@pytest.fixture
def bucket(redis_url: str, queue_prefix: str) -> Iterator[TokenBucket]:
    client = redis.Redis.from_url(redis_url)
    yield TokenBucket(client, f"{queue_prefix}:batch-test")
    client.close()


@pytest.fixture
def pool() -> Iterator[HttpPool]:
    sends = HttpPool(8, httpx.Client)
    yield sends
    sends.shutdown()


def pending(db: Engine, seeded: Seeded, bodies: list[str], *, first: int = 0) -> list[int]:
    """One pending reply per body, each on its own contact's open ticket (window open)."""
    contacts = seed_audience(
        db, tenant_id=seeded.tenant_id, channel_id=seeded.channel_id, count=len(bodies), first=first
    )
    with tenant_tx(db, seeded.tenant_id) as conn:
        tickets = [
            conn.execute(
                text("SELECT id FROM tickets WHERE contact_id = :c"), {"c": c}
            ).scalar_one()
            for c in contacts
        ]
        return [
            record_send(
                conn,
                tenant_id=seeded.tenant_id,
                ticket_id=t,
                request=SendRequest(body=b),
                user_id=None,
            ).message_id
            for t, b in zip(tickets, bodies, strict=True)
        ]


def send(
    db: Engine,
    ids: list[int],
    provider: ScriptedProvider,
    bucket: TokenBucket,
    pool: HttpPool | None,
    *,
    limits: tuple[float, int] = UNPACED,
    reserved_channel_id: int | None = None,
) -> BatchOutcome:
    return run_batch(
        ids,
        db=db,
        adapters={ChannelType.WHATSAPP: provider},
        http=httpx.Client(),
        pool=pool,
        bucket=bucket,
        limits=lambda _: limits,
        policy=SendPolicy(backoff_ms=lambda _: BACKOFF_MS, max_attempts=4),
        reserved_channel_id=reserved_channel_id,
    )


def rows(db: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    with system_tx(db) as conn:
        found = conn.execute(
            text(
                "SELECT id, status, error_code, provider_message_id, send_attempts, "
                "sending_at IS NOT NULL AS leased FROM messages WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        ).mappings()
        return {r["id"]: dict(r) for r in found}


def dead_letters(db: Engine) -> list[dict[str, Any]]:
    with system_tx(db) as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT tenant_id, actor, payload, error_class, error_message, attempts "
                    "FROM dead_letters ORDER BY id"
                )
            ).mappings()
        ]


def test_a_mixed_batch_sends_fails_and_retries_each_message_on_its_own(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket, pool: HttpPool
) -> None:
    ok, rejected, flaky, opted_out = pending(clean_db, acme, ["ok", "reject", "flaky", "ok"])
    with system_tx(clean_db) as conn:
        conn.execute(
            text(
                "UPDATE contacts SET opted_out = true "
                "WHERE id = (SELECT contact_id FROM messages WHERE id = :m)"
            ),
            {"m": opted_out},
        )
    provider = ScriptedProvider()

    first = send(clean_db, [ok, rejected, flaky, opted_out], provider, bucket, pool)

    assert first.statuses == {
        ok: "sent",
        rejected: "failed",
        flaky: "retrying",
        opted_out: "failed",
    }
    assert sorted(provider.calls) == sorted([ok, rejected, flaky])  # opted out: never called
    assert first.resends == [Resend([flaky], BACKOFF_MS)]
    now = rows(clean_db, [ok, rejected, flaky, opted_out])
    assert (now[ok]["status"], now[ok]["provider_message_id"]) == ("sent", f"wamid.{ok}")
    assert (now[rejected]["status"], now[rejected]["error_code"]) == ("failed", "131026")
    assert (now[opted_out]["status"], now[opted_out]["error_code"]) == ("failed", "opted_out")
    # The retryable one is released for its retry, its attempt counted.
    assert (now[flaky]["status"], now[flaky]["send_attempts"], now[flaky]["leased"]) == (
        "pending",
        1,
        False,
    )
    letters = dead_letters(clean_db)
    assert [(d["error_class"], d["payload"]["args"], d["attempts"]) for d in letters] == [
        ("ProviderRejectedError", [rejected], 1),
        ("ProviderRejectedError", [opted_out], 1),
    ]
    assert {(d["tenant_id"], d["actor"], d["payload"]["actor_name"]) for d in letters} == {
        (acme.tenant_id, "send_message", "send_message")
    }
    with system_tx(clean_db) as conn:
        announced = conn.execute(
            text(
                "SELECT (payload->>'message_id')::bigint, payload->>'status' FROM outbox "
                "WHERE topic = 'message.status' AND id = ANY(:ids) ORDER BY 1"
            ),
            {"ids": first.outbox_ids},
        ).all()
    assert announced == sorted([(ok, "sent"), (rejected, "failed"), (opted_out, "failed")])

    time.sleep(BACKOFF_MS / 1000)
    second = send(clean_db, first.resends[0].message_ids, provider, bucket, pool)

    assert second.statuses == {flaky: "sent"}
    assert second.resends == []
    after = rows(clean_db, [flaky])[flaky]
    assert (after["status"], after["send_attempts"]) == ("sent", 2)
    assert Counter(provider.calls) == {ok: 1, rejected: 1, flaky: 2}
    assert len(dead_letters(clean_db)) == 2


def test_the_last_retryable_attempt_fails_the_message_with_a_dead_letter(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket
) -> None:
    [message_id] = pending(clean_db, acme, ["flaky"])
    with system_tx(clean_db) as conn:  # three attempts behind it already; the policy allows four
        conn.execute(text("UPDATE messages SET send_attempts = 3 WHERE id = :m"), {"m": message_id})

    outcome = send(clean_db, [message_id], ScriptedProvider(), bucket, None)

    assert outcome.statuses == {message_id: "failed"} and outcome.resends == []
    assert rows(clean_db, [message_id])[message_id]["send_attempts"] == 4
    [letter] = dead_letters(clean_db)
    assert (letter["error_class"], letter["attempts"]) == ("ProviderUnavailableError", 4)


def test_a_providers_429_burns_no_attempt_even_the_last_one(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket
) -> None:
    [message_id] = pending(clean_db, acme, ["limited"])
    with system_tx(clean_db) as conn:  # three attempts behind it already; the policy allows four
        conn.execute(text("UPDATE messages SET send_attempts = 3 WHERE id = :m"), {"m": message_id})
    provider = ScriptedProvider()

    outcome = send(clean_db, [message_id], provider, bucket, None)

    # Not failed: sent again at the provider's retry-after, its attempts as they were.
    assert outcome.statuses[message_id] != "failed"
    assert [(r.message_ids, r.delay_ms) for r in outcome.resends] == [([message_id], 1200)]
    after = rows(clean_db, [message_id])[message_id]
    assert (after["status"], after["send_attempts"]) == ("pending", 3)
    assert dead_letters(clean_db) == []
    # The channel's bucket was slowed by the 429: too early is throttled, not sent.
    assert send(clean_db, [message_id], provider, bucket, None).statuses == {
        message_id: "throttled"
    }
    time.sleep(1.3)
    again = send(clean_db, [message_id], provider, bucket, None)
    assert again.statuses == {message_id: "sent"}
    assert rows(clean_db, [message_id])[message_id]["send_attempts"] == 4


def test_the_same_batch_delivered_twice_at_once_sends_each_message_once(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket, pool: HttpPool
) -> None:
    ids = pending(clean_db, acme, ["ok"] * 20)
    provider = ScriptedProvider(latency_s=0.05)
    outcomes: list[BatchOutcome] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(send(clean_db, ids, provider, bucket, pool))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Counter(provider.calls) == dict.fromkeys(ids, 1)
    merged = Counter(s for o in outcomes for s in o.statuses.values())
    assert merged == {"sent": 20, "skipped": 20}
    assert all(r["status"] == "sent" for r in rows(clean_db, ids).values())
    # and again, long after: nothing to do
    assert set(send(clean_db, ids, provider, bucket, pool).statuses.values()) == {"skipped"}
    assert len(provider.calls) == 20


def test_throttled_sends_are_not_counted_and_come_back_one_slot_apart(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket, pool: HttpPool
) -> None:
    # A slot every 500 ms once the burst is spent: wide enough that a slow machine cannot
    # refill a token between the two batches and change what this test is about.
    rate, burst = 2.0, 2
    slot_ms = 500
    first_ids = pending(clean_db, acme, ["ok"] * 6)
    second_ids = pending(clean_db, acme, ["ok"] * 4, first=6)
    provider = ScriptedProvider()

    first_at = time.monotonic()
    first = send(clean_db, first_ids, provider, bucket, pool, limits=(rate, burst))
    second_at = time.monotonic()
    second = send(clean_db, second_ids, provider, bucket, pool, limits=(rate, burst))

    assert sorted(provider.calls) == first_ids[:2]
    throttled = first_ids[2:] + second_ids
    assert {m: s for m, s in {**first.statuses, **second.statuses}.items() if m in throttled} == (
        dict.fromkeys(throttled, "throttled")
    )
    assert {m: (r["send_attempts"], r["leased"]) for m, r in rows(clean_db, throttled).items()} == (
        dict.fromkeys(throttled, (0, False))
    )
    # Each throttled send has its own slot, one token interval after the one before, and the
    # second batch queues behind the first instead of competing for the same slots.
    first_waits = [first.waits_ms[m] for m in first_ids[2:]]
    second_waits = [second.waits_ms[m] for m in second_ids]
    for waits in (first_waits, second_waits):
        assert [b - a for a, b in itertools.pairwise(waits)] == [slot_ms] * (len(waits) - 1)
    assert 0 < first_waits[0] <= slot_ms
    assert second_at + second_waits[0] / 1000 > first_at + first_waits[-1] / 1000
    waits = first_waits + second_waits
    resends = first.resends + second.resends
    assert sorted(m for r in resends for m in r.message_ids) == sorted(throttled)
    assert {r.reserved_channel_id for r in resends} == {acme.channel_id}
    for resend in resends:  # each goes back at its last member's slot
        assert resend.delay_ms == max(waits[throttled.index(m)] for m in resend.message_ids)

    for resend in sorted(resends, key=lambda r: r.delay_ms):
        time.sleep(max(0.0, resend.delay_ms / 1000 - 0.01))
        again = send(
            clean_db,
            resend.message_ids,
            provider,
            bucket,
            pool,
            limits=(rate, burst),
            reserved_channel_id=resend.reserved_channel_id,
        )
        assert set(again.statuses.values()) == {"sent"}  # its tokens were set aside
    assert Counter(provider.calls) == dict.fromkeys(first_ids + second_ids, 1)
    assert {r["send_attempts"] for r in rows(clean_db, first_ids + second_ids).values()} == {1}


def test_a_status_that_arrived_before_the_ack_is_applied_by_it(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket
) -> None:
    [message_id] = pending(clean_db, acme, ["ok"])
    with system_tx(clean_db) as conn:
        conn.execute(
            text(
                "INSERT INTO message_status_events (tenant_id, channel_id, provider_message_id, "
                "status, provider_timestamp) VALUES (:t, :c, :p, 'delivered', now())"
            ),
            {"t": acme.tenant_id, "c": acme.channel_id, "p": f"wamid.{message_id}"},
        )

    outcome = send(clean_db, [message_id], ScriptedProvider(), bucket, None)

    assert outcome.statuses == {message_id: "delivered"}
    with system_tx(clean_db) as conn:
        events = conn.execute(
            text(
                "SELECT status, message_id FROM message_status_events "
                "WHERE provider_message_id = :p ORDER BY status"
            ),
            {"p": f"wamid.{message_id}"},
        ).all()
        payload = conn.execute(
            text("SELECT payload->>'status' FROM outbox WHERE id = ANY(:ids)"),
            {"ids": outcome.outbox_ids},
        ).scalar_one()
    assert events == [("delivered", message_id), ("sent", message_id)]
    assert payload == "delivered"


class CompletionOrder(ScriptedProvider):
    """Records each send when the provider has it; a body "slow:…" takes 150 ms to arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[str, int]] = []

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        time.sleep(0.15 if message.body and message.body.startswith("slow") else 0.0)
        with self._lock:
            self.arrived.append((message.recipient, message.message_id))
        return SendResult(provider_message_id=f"wamid.{message.message_id}")


def test_one_persons_messages_reach_the_provider_in_order_others_in_parallel(
    clean_db: Engine, acme: Seeded, bucket: TokenBucket, pool: HttpPool
) -> None:
    # A bot's greeting (slow to send) and its menu, to Ana; one reply each to two others.
    [greeting, other, another] = pending(clean_db, acme, ["slow: welcome", "hi", "hello"])
    with tenant_tx(clean_db, acme.tenant_id) as conn:
        ticket = conn.execute(
            text("SELECT ticket_id FROM messages WHERE id = :id"), {"id": greeting}
        ).scalar_one()
        menu = record_send(
            conn,
            tenant_id=acme.tenant_id,
            ticket_id=ticket,
            request=SendRequest(body="1 - Sales, 2 - Support"),
            user_id=None,
        ).message_id
    provider = CompletionOrder()

    outcome = send(clean_db, [menu, another, greeting, other], provider, bucket, pool)

    assert set(outcome.statuses.values()) == {"sent"}
    by_recipient: dict[str, list[int]] = {}
    for recipient, message_id in provider.arrived:
        by_recipient.setdefault(recipient, []).append(message_id)
    assert sorted(by_recipient.values()) == sorted([[greeting, menu], [other], [another]])
    # The others did not wait behind Ana's slow greeting.
    assert [m for _, m in provider.arrived][:2] in ([other, another], [another, other])
