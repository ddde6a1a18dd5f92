"""Ops test support: an ops token, people of each role, a job that can fail, dead letters."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine, text

from actors.broker import actor
from engine.db import system_tx
from engine.errors import PermanentError
from engine.store.dead_letters import NewDeadLetter, insert_dead_letter
from tests.support.harness import RunningEngine

OPS_TOKEN = "ops-token-for-tests-0123456789"
QUEUE = "ops-under-test"
PASSWORD = "correct horse battery"

# Keys the job fails on: a test puts a key here, sends, and removes it to let a requeue pass.
FAILING: set[str] = set()
DONE: list[str] = []


@actor(queue_name=QUEUE, max_retries=0)
def ops_job(key: str) -> None:
    if key in FAILING:
        raise PermanentError(f"job {key} refused")
    DONE.append(key)


@dataclass(frozen=True)
class People:
    tenant_id: int
    super_email: str
    agent_email: str


def bearer_for(engine: RunningEngine, email: str) -> dict[str, str]:
    with engine.client() as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def ops_get(engine: RunningEngine, path: str, **params: object) -> httpx.Response:
    with engine.client() as c:
        return c.get(path, params=params, headers=OPS)


def ops_post(engine: RunningEngine, path: str, body: object | None = None) -> httpx.Response:
    with engine.client() as c:
        return c.post(path, json=body, headers=OPS)


def add_dead_letter(
    db: Engine,
    *,
    queue: str = QUEUE,
    actor_name: str = "ops_job",
    error_class: str = "PermanentError",
    tenant_id: int | None = None,
    age_s: int = 0,
    key: str | None = None,
) -> int:
    """A dead letter as the worker records one, for `ops_job(key)` unless told otherwise."""
    payload = {
        "queue_name": queue,
        "actor_name": actor_name,
        "args": [key or uuid.uuid4().hex[:8]],
        "kwargs": {},
        "options": {},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": 0,
    }
    with system_tx(db) as conn:
        dl_id = insert_dead_letter(
            conn,
            NewDeadLetter(
                tenant_id=tenant_id,
                actor=actor_name,
                queue=queue,
                message_id=payload["message_id"],
                payload_json=json.dumps(payload),
                error_class=error_class,
                error_message="job refused",
                traceback="Traceback (most recent call last):\nPermanentError: job refused",
                attempts=1,
            ),
        )
        if age_s:
            conn.execute(
                text(
                    "UPDATE dead_letters SET created_at = now() - make_interval(secs => :s) "
                    "WHERE id = :id"
                ),
                {"s": age_s, "id": dl_id},
            )
    return dl_id
