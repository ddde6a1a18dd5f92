"""`flowdesk demo` end to end on the test PostgreSQL and Redis, with the provider sandbox: the
numbers a user would check."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]
import psycopg
import pytest
import redis

from api.demo import run_demo
from config import load_settings
from tests.conftest import PG_SERVER, REDIS_SERVER, unavailable

pytestmark = pytest.mark.timeout(120)

ENGINE_PROCESS_WORDS = ("flowdesk", "dramatiq", "api.cli", "postgres", "redis-server")


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A database and a broker namespace of its own, both removed afterwards."""
    name = f"flowdesk_demo_{uuid.uuid4().hex[:10]}"
    prefix = f"fddemo-{uuid.uuid4().hex[:10]}"
    admin_dsn = f"postgresql://{PG_SERVER}/postgres"
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    client = redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield {
        "DATABASE_URL": f"postgresql://{PG_SERVER}/{name}",
        "REDIS_URI": REDIS_SERVER,
        "QUEUE_PREFIX": prefix,
        "JWT_SECRET": "a-demo-test-secret-of-enough-length",
        "FLOWDESK_DATA_DIR": str(tmp_path / "flowdesk"),
    }
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def engine_children(since: float) -> list[str]:
    """Engine or server processes under this one started after `since` (other tests' aside)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.create_time() < since or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            words = " ".join([proc.name(), *proc.cmdline()])
        except psutil.Error:
            continue
        if any(w in words for w in ENGINE_PROCESS_WORDS):
            found.append(words)
    return found


def test_demo_summary_shows_what_became_of_the_traffic(
    demo_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    since = time.time() - 1
    run_demo(load_settings(demo_env), out_json=True, contacts=6)
    report = json.loads(capsys.readouterr().out)

    # One person behind the 13-digit and the old 12-digit form of a Brazilian number.
    assert len(report["contacts"]) == 6
    both_forms = [c for c in report["contacts"] if len(c["seen_as"]) == 2]
    assert len(both_forms) == 1
    assert both_forms[0]["phone"] == "+" + both_forms[0]["seen_as"][0]
    assert len(both_forms[0]["seen_as"][1]) == 12
    assert report["tickets"]["pending"]["tickets"] == 6

    # Exactly one message per distinct wamid, although many were delivered more than once.
    messages = report["messages"]
    assert messages["stored"] == messages["distinct_wamids_sent"]
    assert messages["deliveries_sent"] > messages["stored"]
    assert messages["duplicates_dropped"] == messages["deliveries_sent"] - messages["stored"]
    assert report["webhooks"]["redeliveries_dropped_at_the_door"] > 0

    # The forged signature and the non-JSON body were turned away at the door.
    assert report["webhooks"]["by_status"]["401"] == 1
    assert report["webhooks"]["by_status"]["400"] == 1

    # The message without a sender is a dead letter saying so; nothing is left pending.
    assert [
        d["reason"] for d in report["dead_letters"] if d["error_class"] == "InvalidPayloadError"
    ] == ["message.from: Field required"]
    assert report["inbox"]["pending"] == 0
    assert report["inbox"]["partial"] == 1

    # Ana's read receipt for a made-up wamid waits; the one for our real reply found its message.
    assert report["statuses"]["read"] == {"recorded": 2, "waiting_for_outbound_message": 1}
    assert report["reactions"]["on_record"] == 1
    assert all(check["ok"] for check in report["checks"]), report["checks"]

    # Every channel took its customers' signed webhooks, refused the forged one, and made one
    # ticket per customer chat (Telegram's group is one chat).
    channels = {c["channel"]: c for c in report["channels"]}
    assert {k: c["tickets"] for k, c in channels.items()} == {
        "whatsapp": 6,
        "messenger": 3,
        "instagram": 3,
        "telegram": 3,
        "sms": 3,
        "email": 2,
    }
    assert {k: c["webhooks_rejected"] for k, c in channels.items()} == {
        "whatsapp": 2,  # the forged signature and the body that is not JSON
        "messenger": 1,
        "instagram": 1,
        "telegram": 1,
        "sms": 1,
        "email": 1,
    }
    # The sandbox's status callbacks came back in, signed, and were all accepted.
    assert {k: (c["callbacks_accepted"], c["callbacks_rejected"]) for k, c in channels.items()} == {
        "whatsapp": (2, 0),  # delivered, read
        "messenger": (2, 0),
        "instagram": (2, 0),
        "telegram": (0, 0),  # the Bot API has no delivery receipts
        "sms": (2, 0),  # sent, delivered
        "email": (0, 0),
    }
    assert channels["email"]["messages_in"] == 3  # two new mails and the answer to our reply

    # Each reply ended as planned, with the provider calls the sandbox saw.
    replies = {(r["channel"], r["status"], r["error_code"]): r for r in report["replies"]}
    assert sorted(replies) == sorted(
        [
            ("whatsapp", "read", None),
            ("messenger", "failed", "551"),
            ("messenger", "read", None),
            ("instagram", "read", None),
            ("telegram", "sent", None),
            ("sms", "delivered", None),
            ("sms", "failed", "opted_out"),
            ("email", "sent", None),
        ]
    )
    assert all(r["ok"] for r in report["replies"]), report["replies"]
    assert replies[("whatsapp", "read", None)]["provider_calls"] == ["429", "200"]
    assert replies[("telegram", "sent", None)]["provider_calls"] == ["500", "200"]
    assert replies[("telegram", "sent", None)]["attempts"] == 2
    failed = replies[("messenger", "failed", "551")]
    assert (failed["provider_calls"], failed["dead_letter"]) == (["400"], "ProviderRejectedError")
    stopped = replies[("sms", "failed", "opted_out")]
    assert (stopped["provider_calls"], stopped["dead_letter"]) == ([], "ProviderRejectedError")
    assert replies[("email", "sent", None)]["provider_calls"] == ["250"]
    # What the sandbox saw: two sends where a fault struck first, one everywhere else.
    sandbox = {t["provider"]: (t["sends"], t["faulted"]) for t in report["sandbox"]}
    assert sandbox == {
        "whatsapp": (2, 1),
        "messenger": (2, 1),
        "instagram": (1, 0),
        "telegram": (2, 1),
        "twilio": (1, 0),
        "smtp": (1, 0),
    }

    # Web, worker, scheduler and the sandbox were stopped; nothing of the demo runs any more.
    assert report["leftover_processes"] == []
    assert [p.split(":")[0] for p in report["processes"]] == [
        "web",
        "worker",
        "scheduler",
        "provider sandbox",
    ]
    assert engine_children(since) == []
