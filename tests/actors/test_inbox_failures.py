"""An inbox batch that keeps failing for a reason of its own: its good rows are stored, its
bad row ends dead with one dead letter, and nothing is left for the sweeper to loop on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Engine

import pipelines.inbound as inbound
from engine.store.inbox import InboxRow
from tests.conftest import count
from tests.support.engines import EngineOf
from tests.support.harness import (
    RunningEngine,
    fixture_bytes,
    seed_whatsapp,
    wait_until,
)

TRIGGER = "please crash"


@pytest.fixture
def engine_one_retry(engine_of: EngineOf, clean_db: Engine) -> RunningEngine:
    return engine_of(start_worker=False, MAX_RETRIES="1")


def _text(message_id: str, body: str) -> bytes:
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["text"]["body"] = message_id, body
    return json.dumps(payload).encode()


def test_a_row_that_always_fails_ends_dead_and_its_neighbours_are_stored(
    engine_one_retry: RunningEngine, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = inbound.process_batch

    def crashes_on_trigger(rows: Sequence[InboxRow], **kwargs: Any) -> Any:
        if any(TRIGGER.encode() in row.body for row in rows):
            raise KeyError("a bug this payload reaches")
        return real(rows, **kwargs)

    monkeypatch.setattr(inbound, "process_batch", crashes_on_trigger)
    channel_id = seed_whatsapp(clean_db).channel_id
    bodies = [_text(f"wamid.f{i}", TRIGGER if i == 1 else f"fine {i}") for i in range(3)]
    for body in bodies:  # stored first, then one worker takes them as one batch
        assert engine_one_retry.post_whatsapp(channel_id, body).status_code == 200
    assert engine_one_retry.worker is not None
    engine_one_retry.worker.start()

    wait_until(
        lambda: count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 0,
        30,
        "every row to be settled",
    )
    engine_one_retry.drain(wait_for_inbox=False)

    assert count(clean_db, "SELECT count(*) FROM messages") == 2
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'dead'") == 1
    dead = "SELECT count(*) FROM dead_letters WHERE actor = 'process_inbox'"
    assert count(clean_db, dead) == 1
    assert count(clean_db, dead + " AND error_message LIKE 'KeyError%'") == 1  # says why
