"""Backpressure: past INGEST_MAX_BACKLOG unprocessed rows, webhooks get 503 + Retry-After and
nothing is stored; once workers drain the inbox, webhooks are accepted again."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import Engine

from bench.payloads import PayloadSpec, text_body
from config import ConfigError, load_settings
from tests.conftest import count
from tests.support.engines import EngineOf
from tests.support.harness import RunningEngine, seed_whatsapp, wait_until

BOUND = 5
SPEC = PayloadSpec(run_tag="backpressure", count=BOUND + 3, contacts=4)


@pytest.fixture
def engine_without_workers(engine_of: EngineOf, clean_db: Engine) -> RunningEngine:
    return engine_of(start_worker=False, INGEST_MAX_BACKLOG=str(BOUND))


def test_the_bound_holds_and_ingest_resumes_once_drained(
    engine_without_workers: RunningEngine, clean_db: Engine, redis_url: str, queue_prefix: str
) -> None:
    engine = engine_without_workers
    channel_id = seed_whatsapp(clean_db).channel_id
    bodies = [text_body(SPEC, i, contact=i % SPEC.contacts) for i in range(SPEC.count)]

    accepted = [engine.post_whatsapp(channel_id, body) for body in bodies[:BOUND]]
    assert [r.status_code for r in accepted] == [200] * BOUND

    refused = engine.post_whatsapp(channel_id, bodies[BOUND])
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "backlog_full"
    # A redelivery of an event already stored is refused too while full: nothing is lost,
    # since its first copy is in the inbox.
    assert engine.post_whatsapp(channel_id, bodies[0]).status_code == 503
    assert count(clean_db, "SELECT count(*) FROM inbox") == BOUND
    rejected = redis.Redis.from_url(redis_url).hget(
        f"{queue_prefix}:ingest:rejected", "whatsapp:backlog_full"
    )
    assert rejected is not None and int(rejected) == 2

    assert engine.worker is not None
    engine.worker.start()
    engine.drain()
    assert count(clean_db, "SELECT count(*) FROM messages WHERE direction = 'in'") == BOUND

    # The web recounts the backlog at most once a second: the provider's retry gets through.
    wait_until(
        lambda: engine.post_whatsapp(channel_id, bodies[BOUND]).status_code == 200,
        10,
        "the refused webhook to be accepted after the drain",
    )
    engine.post_whatsapp(channel_id, bodies[BOUND + 1]).raise_for_status()
    engine.drain()
    assert count(clean_db, "SELECT count(*) FROM messages WHERE direction = 'in'") == BOUND + 2


def test_concurrent_webhooks_never_push_the_inbox_past_the_bound(
    engine_without_workers: RunningEngine, clean_db: Engine
) -> None:
    channel_id = seed_whatsapp(clean_db).channel_id
    spec = PayloadSpec(run_tag="backpressure-burst", count=4 * BOUND, contacts=6)
    bodies = [text_body(spec, i, contact=i % spec.contacts) for i in range(spec.count)]

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        codes = Counter(
            pool.map(
                lambda b: engine_without_workers.post_whatsapp(channel_id, b).status_code, bodies
            )
        )

    assert codes == {200: BOUND, 503: len(bodies) - BOUND}
    assert count(clean_db, "SELECT count(*) FROM inbox") == BOUND


def test_the_bound_defaults_high_and_must_be_a_positive_integer() -> None:
    assert load_settings({}).INGEST_MAX_BACKLOG == 100_000
    for bad in ("0", "-5", "many"):
        with pytest.raises(ConfigError, match=r"INGEST_MAX_BACKLOG: .*got '"):
            load_settings({"INGEST_MAX_BACKLOG": bad})
