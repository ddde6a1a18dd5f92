"""The engine as real processes (web, worker, scheduler) sharing one metrics directory: a
webhook with a phone number and a message body goes through, then /metrics and the logs are
read the way an operator would read them."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine, text

from api.demo.processes import EngineProcesses
from config import Settings
from engine.db import system_tx
from tests.conftest import count
from tests.support.harness import APP_SECRET, Seeded, fixture_bytes, seed_whatsapp, sign, wait_until

PHONE_NUMBER_ID = "106540352200077"
CUSTOMER_PHONE = "5511987650123"
BODY_TEXT = "my card ends 4242 and the parcel never came"
# Every label a flowdesk metric may carry; ids of any kind would make series unbounded.
BOUNDED_LABELS = {"channel", "outcome", "stage", "actor", "queue", "status", "code", "state"}
BOUNDED_LABELS |= {"endpoint", "le"}


@dataclass
class Run:
    processes: EngineProcesses
    log_dir: Path
    seeded: Seeded
    correlation_id: str

    def scrape(self) -> list[Sample]:
        response = httpx.get(f"{self.processes.base_url}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return [
            sample
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        ]

    def logs(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _status_body(wamid: str) -> bytes:
    payload = json.loads(fixture_bytes("whatsapp", "status_delivered.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    value["statuses"][0] |= {"id": wamid, "recipient_id": CUSTOMER_PHONE}
    return json.dumps(payload).encode()


def _agent_reply(db: Engine, tenant_id: int) -> str:
    """An agent's reply on the ticket the webhook opened, already sent to the provider."""
    wamid = f"wamid.reply-{uuid.uuid4().hex}"
    with system_tx(db) as conn:
        conn.execute(
            text(
                """
                INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction,
                    type, body, provider_message_id, status, status_at, send_type)
                SELECT tenant_id, id, contact_id, channel_id, 'out', 'text', 'On its way',
                    :wamid, 'sent', now(), 'chat'
                FROM tickets WHERE tenant_id = :t
                """
            ),
            {"wamid": wamid, "t": tenant_id},
        )
    return wamid


def _webhook_body() -> bytes:
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    value["contacts"][0]["wa_id"] = CUSTOMER_PHONE
    message = value["messages"][0]
    message["from"] = CUSTOMER_PHONE
    message["id"] = f"wamid.obs-{uuid.uuid4().hex}"
    message["text"]["body"] = BODY_TEXT
    return json.dumps(payload).encode()


@pytest.fixture(scope="module")
def run(
    db: Engine, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    seeded = seed_whatsapp(db, name="Observed", phone_number_id=PHONE_NUMBER_ID)
    prefix = f"fdtest-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("observability")
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env |= {
        "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
        "REDIS_URI": redis_url,
        "QUEUE_PREFIX": prefix,
        "JWT_SECRET": "a-test-secret-of-enough-length-for-any-rule",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics"),
        "PYTHONUNBUFFERED": "1",
    }
    processes = EngineProcesses(env, root / "logs")
    processes.start()
    try:
        processes.wait_healthy()
        correlation_id = f"obs-{uuid.uuid4().hex}"
        body = _webhook_body()
        url = f"{processes.base_url}/webhooks/whatsapp/{seeded.channel_id}"
        headers = {"Content-Type": "application/json", "X-Request-ID": correlation_id}
        accepted = httpx.post(
            url, content=body, headers={**headers, "X-Hub-Signature-256": sign(body)}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.headers["x-request-id"] == correlation_id
        forged = httpx.post(
            url, content=body, headers={**headers, "X-Hub-Signature-256": sign(b"other")}
        )
        assert forged.status_code == 401
        wait_until(
            lambda: (
                count(db, "SELECT count(*) FROM messages WHERE tenant_id = :t", t=seeded.tenant_id)
                == 1
            ),
            60,
            "the message to be stored",
        )
        status = _status_body(_agent_reply(db, seeded.tenant_id))
        delivered = httpx.post(  # no X-Request-ID: the web makes one up
            url,
            content=status,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(status)},
        )
        assert delivered.status_code == 200
        done = "SELECT count(*) FROM messages WHERE tenant_id = :t AND status = 'delivered'"
        wait_until(lambda: count(db, done, t=seeded.tenant_id) == 1, 60, "the status applied")
        yield Run(processes, root / "logs", seeded, correlation_id)
    finally:
        processes.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)


def test_web_metrics_include_the_workers_stages_and_actors(run: Run) -> None:
    # The web process never runs a stage: these counts come from the worker's files.
    processed = {"actor": "process_inbox", "queue": "inbound", "outcome": "ok"}
    wait_until(
        lambda: _value(run.scrape(), "flowdesk_actor_messages_total", **processed) >= 2,
        60,
        "the worker's batches to show in /metrics",
    )
    samples = run.scrape()
    accepted = {"channel": "whatsapp", "outcome": "accepted"}
    assert _value(samples, "flowdesk_webhooks_received_total", **accepted) == 2
    rejected = {"channel": "whatsapp", "outcome": "bad_signature"}
    assert _value(samples, "flowdesk_webhooks_received_total", **rejected) == 1
    # A batch's realtime events are published by the inbound worker itself, in its ack.
    for stage in ("validate", "enrich", "route", "persist", "ack"):
        assert _value(samples, "flowdesk_pipeline_stage_seconds_count", stage=stage) >= 1, stage
    assert _value(samples, "flowdesk_actor_messages_total", **processed) == 2
    delivered = {"channel": "whatsapp", "status": "delivered"}
    assert _value(samples, "flowdesk_deliveries_total", **delivered) == 1
    depths = {s.labels["state"] for s in samples if s.name == "flowdesk_queue_depth"}
    assert depths == {"ready", "delayed", "in_flight", "dead"}
    assert _value(samples, "flowdesk_queue_depth", queue="inbound", state="ready") == 0


def test_metric_labels_are_bounded(run: Run) -> None:
    ids = {str(run.seeded.tenant_id), str(run.seeded.channel_id), run.correlation_id}
    ids |= {PHONE_NUMBER_ID, CUSTOMER_PHONE}
    ours = [s for s in run.scrape() if s.name.startswith("flowdesk_")]
    assert ours
    for sample in ours:
        assert set(sample.labels) <= BOUNDED_LABELS, sample
        assert not ids & set(sample.labels.values()), sample


def test_logs_carry_the_correlation_id_and_no_personal_data(run: Run) -> None:
    wait_until(
        lambda: run.logs("worker").count('"process_inbox"') >= 2, 60, "the batches' log lines"
    )
    web, worker = run.logs("web"), run.logs("worker")
    for written in (web, worker):
        assert CUSTOMER_PHONE not in written
        assert BODY_TEXT not in written
        assert APP_SECRET not in written
    web_lines = [json.loads(line) for line in web.splitlines() if line.startswith("{")]
    ingest = [line for line in web_lines if line.get("msg") == "webhook accepted"]
    assert len(ingest) == 2 and ingest[0]["correlation_id"] == run.correlation_id
    assert ingest[0]["channel"] == "whatsapp"
    made_up = ingest[1]["correlation_id"]  # the status webhook's
    assert len(made_up) == 32 and made_up != run.correlation_id
    worker_lines = [json.loads(line) for line in worker.splitlines() if line.startswith("{")]
    done = {
        line["actor"]: line
        for line in worker_lines
        if line.get("msg") == "message processed" and run.correlation_id in str(line)
    }
    assert "process_inbox" in done
    inbox = done["process_inbox"]
    assert inbox["correlation_id"] == run.correlation_id
    assert inbox["outcome"] == "ok" and inbox["attempt"] == 1
    assert inbox["queue"] == "inbound" and inbox["duration_ms"] >= 0
