"""`flowdesk queues` and the dead-letter filters of `flowdesk dlq`, in-process, on Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.cli import cli_env, invoke, logging_restored
from tests.support.ops import QUEUE, add_dead_letter, ops_job


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Any]:
    cli_env(monkeypatch, database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix)
    with logging_restored():
        yield lambda *argv: invoke(capsys, argv)


def test_queues_table_and_json_show_depths_and_dead_letters(
    cli: Any, clean_db: Engine, broker: dramatiq.Broker
) -> None:
    for i in range(3):
        ops_job.send(f"q-{i}")
    add_dead_letter(clean_db)

    code, out, err = cli("--json", "queues")
    assert code == 0, err
    mine = {q["name"]: q for q in json.loads(out)["queues"]}[QUEUE]
    assert (mine["ready"], mine["delayed"], mine["in_flight"], mine["dead"]) == (3, 0, 0, 1)

    code, out, _ = cli("queues")
    header, *rows = out.splitlines()[1:]
    assert header.split() == [
        "QUEUE",
        "READY",
        "DELAYED",
        "IN-FLIGHT",
        "DEAD",
        "OLDEST",
        "DONE/MIN",
        "FAIL/MIN",
    ]
    row = next(r.split() for r in rows if r.startswith(QUEUE))
    assert row[1:5] == ["3", "0", "0", "1"]


def test_dlq_filters_are_the_apis(cli: Any, clean_db: Engine) -> None:
    old = add_dead_letter(clean_db, age_s=3 * 3600)
    other_queue = add_dead_letter(clean_db, queue="deliver", actor_name="publish_outbox")
    fresh = add_dead_letter(clean_db)

    def ids(*argv: str) -> list[int]:
        code, out, err = cli("--json", "dlq", "list", *argv)
        assert code == 0, err
        return [d["id"] for d in json.loads(out)]

    assert ids("--queue", "deliver") == [other_queue]
    assert ids("--queue", QUEUE, "--since", "1h") == [fresh]
    assert ids("--until", "1h") == [old]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert ids("--queue", QUEUE, "--until", an_hour_ago) == [old]
    assert ids("--queue", QUEUE, "--limit", "1") == [fresh]

    code, out, _ = cli("dlq", "list", "--queue", QUEUE, "--limit", "1")
    assert f"more: --cursor {fresh}" in out
    assert ids("--queue", QUEUE, "--limit", "1", "--cursor", str(fresh)) == [old]

    code, _, err = cli("dlq", "list", "--since", "last tuesday")
    assert code == 2 and "--since" in err

    code, out, err = cli("--json", "dlq", "requeue", "--queue", QUEUE, "--until", "1h")
    assert code == 0, err
    assert json.loads(out) == {"requeued": [old]}
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL") == 2


def test_queues_watch_refreshes_until_ctrl_c(
    cli: Any, broker: dramatiq.Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.cli_ops

    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:
            ops_job.send("arrives-between-refreshes")
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(api.cli_ops.time, "sleep", sleep)
    code, out, err = cli("--json", "queues", "--watch")
    assert code == 0, err
    first, second = (json.loads(line) for line in out.splitlines())
    ready = [{q["name"]: q for q in doc["queues"]}[QUEUE]["ready"] for doc in (first, second)]
    assert ready == [0, 1] and pauses == [2.0, 2.0]
