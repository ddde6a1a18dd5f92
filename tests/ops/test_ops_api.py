"""The ops API over a running engine on Redis: who may call it, dead letters, workers, inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.harness import RunningEngine, wait_until
from tests.support.ops import (
    DONE,
    FAILING,
    OPS_TOKEN,
    QUEUE,
    People,
    add_dead_letter,
    bearer_for,
    ops_get,
    ops_job,
    ops_post,
)

LIVE = "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL"


def test_only_super_users_and_the_ops_token_get_in(
    ops_engine: RunningEngine, people: People
) -> None:
    with ops_engine.client() as c:
        assert c.get("/ops/queues").status_code == 401
        wrong = {"Authorization": "Bearer " + OPS_TOKEN[::-1]}
        assert c.get("/ops/queues", headers=wrong).status_code == 401
        agent = bearer_for(ops_engine, people.agent_email)
        denied = c.get("/ops/dead-letters", headers=agent)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        assert (
            c.post("/ops/dead-letters/purge", json={"all": True}, headers=agent).status_code == 403
        )
        super_user = bearer_for(ops_engine, people.super_email)
        assert c.get("/ops/queues", headers=super_user).status_code == 200
    assert ops_get(ops_engine, "/ops/queues").status_code == 200


def test_dead_letters_filter_by_queue_actor_tenant_error_and_time_with_a_cursor(
    ops_engine: RunningEngine, clean_db: Engine, people: People
) -> None:
    old = add_dead_letter(clean_db, age_s=3 * 3600, tenant_id=people.tenant_id)
    other_queue = add_dead_letter(clean_db, queue="deliver", actor_name="publish_outbox")
    other_error = add_dead_letter(clean_db, error_class="InvalidPayloadError")
    newest = [add_dead_letter(clean_db) for _ in range(3)]

    def ids(**params: object) -> list[int]:
        r = ops_get(ops_engine, "/ops/dead-letters", **params)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert ids(queue="deliver") == [other_queue]
    assert ids(actor="publish_outbox") == [other_queue]
    assert ids(error_class="InvalidPayloadError") == [other_error]
    assert ids(tenant_id=people.tenant_id) == [old]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert ids(until=an_hour_ago) == [old]
    assert old not in ids(since=an_hour_ago)
    assert ids(queue=QUEUE, error_class="PermanentError", since=an_hour_ago) == newest[::-1]

    first = ops_get(ops_engine, "/ops/dead-letters", queue=QUEUE, limit=2).json()
    assert [i["id"] for i in first["items"]] == [newest[2], newest[1]]
    second = ops_get(
        ops_engine, "/ops/dead-letters", queue=QUEUE, limit=2, cursor=first["next_cursor"]
    ).json()
    assert [i["id"] for i in second["items"]] == [newest[0], other_error]
    third = ops_get(
        ops_engine, "/ops/dead-letters", queue=QUEUE, limit=2, cursor=second["next_cursor"]
    ).json()
    assert [i["id"] for i in third["items"]] == [old] and third["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tenant_id": "abc"}, "tenant_id"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no zone: ambiguous
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour"),
        ({"queue": "in\x00bound"}, "queue"),  # PostgreSQL refuses NUL in text
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    ops_engine: RunningEngine, params: dict[str, str], field: str
) -> None:
    r = ops_get(ops_engine, "/ops/dead-letters", **params)
    assert r.status_code == 422
    assert field in [d["field"] for d in r.json()["error"]["details"]]


def test_detail_has_everything_to_diagnose(ops_engine: RunningEngine, clean_db: Engine) -> None:
    dl_id = add_dead_letter(clean_db, key="k-detail")
    body = ops_get(ops_engine, f"/ops/dead-letters/{dl_id}").json()
    assert body["actor"] == "ops_job" and body["queue"] == QUEUE
    assert body["payload"]["args"] == ["k-detail"]
    assert body["traceback"].endswith("PermanentError: job refused")
    assert body["attempts"] == 1 and body["error_class"] == "PermanentError"
    assert ops_get(ops_engine, f"/ops/dead-letters/{dl_id + 99}").status_code == 404


def test_a_failing_job_becomes_a_dead_letter_and_a_requeue_runs_it_once(
    ops_engine: RunningEngine, clean_db: Engine
) -> None:
    FAILING.add("k-1")
    ops_job.send("k-1")
    wait_until(lambda: count(clean_db, LIVE) == 1, what="the dead letter")
    [item] = ops_get(ops_engine, "/ops/dead-letters", queue=QUEUE).json()["items"]
    FAILING.clear()

    r = ops_post(ops_engine, f"/ops/dead-letters/{item['id']}/requeue")
    assert r.status_code == 200 and r.json() == {"requeued": [item["id"]]}
    wait_until(lambda: DONE == ["k-1"], what="the requeued job")
    assert count(clean_db, LIVE) == 0
    again = ops_post(ops_engine, f"/ops/dead-letters/{item['id']}/requeue")
    assert again.status_code == 409
    assert ops_post(ops_engine, f"/ops/dead-letters/{item['id'] + 99}/requeue").status_code == 404
    assert DONE == ["k-1"]


def test_bulk_requeue_and_purge_act_on_the_filter_and_refuse_an_empty_one(
    ops_engine: RunningEngine, clean_db: Engine
) -> None:
    for path in ("/ops/dead-letters/requeue", "/ops/dead-letters/purge"):
        refused = ops_post(ops_engine, path, {})
        assert refused.status_code == 422
        assert [d["field"] for d in refused.json()["error"]["details"]] == ["all"]
    assert ops_post(ops_engine, "/ops/dead-letters/purge", {"until": "soon"}).status_code == 422

    keep = add_dead_letter(clean_db, error_class="RateLimitedError", key="k-keep")
    doomed = [add_dead_letter(clean_db, error_class="InvalidPayloadError") for _ in range(2)]
    requeued = [add_dead_letter(clean_db, key=f"k-{i}") for i in range(3)]
    purged = ops_post(ops_engine, "/ops/dead-letters/purge", {"error_class": "InvalidPayloadError"})
    assert purged.json() == {"purged": 2}
    assert count(clean_db, f"SELECT count(*) FROM dead_letters WHERE id IN {tuple(doomed)}") == 0

    r = ops_post(ops_engine, "/ops/dead-letters/requeue", {"error_class": "PermanentError"})
    assert r.json() == {"requeued": requeued, "count": 3}
    wait_until(lambda: sorted(DONE) == ["k-0", "k-1", "k-2"], what="requeued jobs")
    everything = ops_post(ops_engine, "/ops/dead-letters/requeue", {"all": True}).json()
    assert everything["requeued"] == [keep]
    add_dead_letter(clean_db)
    # Purge deletes what is still dead; requeued rows stay as history.
    assert ops_post(ops_engine, "/ops/dead-letters/purge", {"all": True}).json() == {"purged": 1}
    assert count(clean_db, "SELECT count(*) FROM dead_letters") == 4


def test_workers_report_threads_and_queues(ops_engine: RunningEngine) -> None:
    wait_until(lambda: bool(ops_get(ops_engine, "/ops/workers").json()["workers"]), what="a beat")
    [worker] = ops_get(ops_engine, "/ops/workers").json()["workers"]
    assert worker["threads"] == 4
    assert QUEUE in worker["queues"] and "inbound" in worker["queues"]
    assert worker["current"] == []


def test_queues_show_throughput_and_dead_letters_by_tenant(
    ops_engine: RunningEngine, clean_db: Engine, people: People
) -> None:
    FAILING.add("bad")
    for key in ("a", "b", "c", "bad"):
        ops_job.send(key)
    wait_until(lambda: len(DONE) == 3 and count(clean_db, LIVE) == 1, what="four runs")
    add_dead_letter(clean_db, tenant_id=people.tenant_id)
    add_dead_letter(clean_db, tenant_id=people.tenant_id)

    queues = {q["name"]: q for q in ops_get(ops_engine, "/ops/queues").json()["queues"]}
    mine = queues[QUEUE]
    assert sum(m["processed"] for m in mine["history"]) == 3
    assert sum(m["failed"] for m in mine["history"]) == 1
    assert mine["dead"] == 3
    assert mine["dead_by_tenant"] == [
        {"tenant_id": None, "count": 1},
        {"tenant_id": people.tenant_id, "count": 2},
    ]
    assert (mine["ready"], mine["delayed"], mine["in_flight"]) == (0, 0, 0)
    assert {"inbound", "deliver", "outbound"} <= set(queues)


def test_inbox_shows_unprocessed_and_ignored_with_reasons(
    ops_engine: RunningEngine, clean_db: Engine
) -> None:
    from sqlalchemy import text

    from engine.db import system_tx
    from tests.support.harness import seed_whatsapp

    seeded = seed_whatsapp(clean_db)
    with system_tx(clean_db) as conn:
        for key, status, note, age_s in (
            ("p1", "pending", None, 600),
            ("p2", "pending", None, 5),
            ("i1", "ignored", "status for an unknown message", 0),
            ("d1", "dead", "database refused the batch", 0),
        ):
            conn.execute(
                text(
                    "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body, status, note, "
                    "received_at) VALUES (:t, :c, :k, 'x', :s, :n, "
                    "now() - make_interval(secs => :a))"
                ),
                {
                    "t": seeded.tenant_id,
                    "c": seeded.channel_id,
                    "k": key,
                    "s": status,
                    "n": note,
                    "a": age_s,
                },
            )
    body = ops_get(ops_engine, "/ops/inbox").json()
    assert body["unprocessed"] == 2 and body["dead"] == 1
    assert 600 <= body["oldest_unprocessed_age_s"] < 3600
    assert [(e["status"], e["reason"]) for e in body["recent_ignored"]] == [
        ("dead", "database refused the batch"),
        ("ignored", "status for an unknown message"),
    ]
