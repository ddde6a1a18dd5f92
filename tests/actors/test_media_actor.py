"""download_media on a real Redis broker and worker against the sandbox: retries, the dead
letter with the item marked failed, and the sweep re-offering a download the broker lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from actors import deps as worker_deps
from actors.maintenance import sweep
from actors.media import download_media
from adapters.sandbox import Sandbox
from adapters.sandbox.state import Fault, media_bytes
from engine.db import system_tx
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant
from tests.conftest import count
from tests.support.harness import RunningEngine, running_engine, wait_until

SWEEP_AFTER_S = 5
MAX_RETRIES = 3  # running_engine's


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def engine(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    tmp_path: Path,
    sandbox: Sandbox,
) -> Iterator[RunningEngine]:
    sandbox.state.reset()
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        INBOX_SWEEP_AFTER_S=str(SWEEP_AFTER_S),
        MEDIA_DIR=str(tmp_path / "media"),
    ) as running:
        yield running
    sandbox.state.reset()


def _message(db: Engine, sandbox: Sandbox, media_id: str, *, age_s: int = 0) -> int:
    """An inbound WhatsApp message with one image, on a channel pointed at the sandbox."""
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=f"Media {uuid.uuid4().hex[:6]}")
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name="WA",
            external_id=uuid.uuid4().hex[:12],
            config=ChannelConfig(api_base_url=sandbox.http_url + "/v21.0"),
            secrets=ChannelSecrets(access_token="tok"),
        )
        contact_id = conn.execute(
            text("INSERT INTO contacts (tenant_id) VALUES (:t) RETURNING id"), {"t": tenant_id}
        ).scalar_one()
        ticket_id = conn.execute(
            text(
                "INSERT INTO tickets (tenant_id, channel_id, contact_id, protocol) "
                "VALUES (:t, :c, :k, :p) RETURNING id"
            ),
            {"t": tenant_id, "c": channel_id, "k": contact_id, "p": uuid.uuid4().hex},
        ).scalar_one()
        media = [{"type": "image", "mime_type": "image/jpeg", "provider_media_id": media_id}]
        return int(
            conn.execute(
                text(
                    "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, "
                    "direction, type, media, status, created_at) VALUES (:t, :tk, :k, :c, 'in', "
                    "'image', CAST(:m AS jsonb), 'received', "
                    "now() - make_interval(secs => :age)) RETURNING id"
                ),
                {
                    "t": tenant_id,
                    "tk": ticket_id,
                    "k": contact_id,
                    "c": channel_id,
                    "m": json.dumps(media),
                    "age": age_s,
                },
            ).scalar_one()
        )


def _item(db: Engine, message_id: int) -> dict[str, Any]:
    with system_tx(db) as conn:
        raw = conn.execute(
            text("SELECT media -> 0 FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    return dict(raw)


def _settled(db: Engine, message_id: int) -> bool:
    return _item(db, message_id).get("download_status") is not None


def test_download_media_stores_the_file(
    engine: RunningEngine, clean_db: Engine, sandbox: Sandbox, tmp_path: Path
) -> None:
    message_id = _message(clean_db, sandbox, "wa-actor-1")
    download_media.send(message_id, 0)
    wait_until(lambda: _settled(clean_db, message_id), 15, "the download")
    item = _item(clean_db, message_id)
    assert item["download_status"] == "stored"
    stored = tmp_path / "media" / item["storage_uri"].removeprefix("local:")
    assert stored.read_bytes() == media_bytes("wa-actor-1")


def test_a_provider_down_for_good_ends_as_a_dead_letter_and_a_failed_item(
    engine: RunningEngine, clean_db: Engine, sandbox: Sandbox
) -> None:
    sandbox.state.add_fault(Fault(provider="whatsapp", mode="server_error", count=-1))
    message_id = _message(clean_db, sandbox, "wa-actor-down")
    download_media.send(message_id, 0)
    wait_until(lambda: _settled(clean_db, message_id), 20, "the last attempt")
    wait_until(
        lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 1, 10, "the dead letter"
    )
    item = _item(clean_db, message_id)
    assert item["download_status"] == "failed"
    assert item["download_attempts"] == MAX_RETRIES + 1
    assert item["provider_media_id"] == "wa-actor-down"
    with system_tx(clean_db) as conn:
        actor, error_class, attempts = conn.execute(
            text("SELECT actor, error_class, attempts FROM dead_letters")
        ).one()
    assert (actor, error_class, attempts) == (
        "download_media",
        "ProviderUnavailableError",
        MAX_RETRIES + 1,
    )


def test_the_sweep_re_offers_a_download_the_broker_lost(
    engine: RunningEngine, clean_db: Engine, sandbox: Sandbox
) -> None:
    fresh = _message(clean_db, sandbox, "wa-actor-fresh")
    lost = _message(clean_db, sandbox, "wa-actor-lost", age_s=SWEEP_AFTER_S + 60)
    deps = worker_deps.current()

    assert sweep(deps).media_requeued == 1  # the fresh one may still be on its way
    wait_until(lambda: _settled(clean_db, lost), 15, "the swept download")
    assert _item(clean_db, lost)["download_status"] == "stored"
    assert sweep(deps).media_requeued == 0  # stored items are never offered again
    assert "download_status" not in _item(clean_db, fresh)
