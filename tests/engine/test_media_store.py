"""Download outcomes written into messages.media on the real database, in place."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx, tenant_tx
from engine.errors import InvalidPayloadError
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.store import conversations as conv
from engine.store.channels import insert_channel
from engine.store.media import get_media_item, mark_media
from engine.store.tenants import insert_tenant


def _element(media_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": "image",
        "mime_type": "image/jpeg",
        "provider_media_id": media_id,
        "url": None,
        "filename": None,
        "caption": "look",
        "sha256": "abc",
        **extra,
    }


@pytest.fixture
def message(clean_db: Engine) -> tuple[int, int, int]:
    """(tenant id, channel id, message id) of an inbound message with two media items."""
    with system_tx(clean_db) as conn:
        tenant_id = insert_tenant(conn, name="Media")
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name="WA",
            external_id="555",
            config=ChannelConfig(),
            secrets=ChannelSecrets(access_token="tok"),
        )
        contact = conv.upsert_contact(
            conn,
            tenant_id=tenant_id,
            channel_type="whatsapp",
            identity_key="+5511987654321",
            external_id="5511987654321",
            name="Ana",
            phone="+5511987654321",
        )
        ticket = conv.find_or_create_ticket(
            conn, tenant_id=tenant_id, channel_id=channel_id, contact_id=contact.id
        )
        [stored] = conv.store_inbound_messages(
            conn,
            [
                conv.NewInboundMessage(
                    tenant_id=tenant_id,
                    ticket_id=ticket.id,
                    contact_id=contact.id,
                    channel_id=channel_id,
                    type="image",
                    body=None,
                    media_json=json.dumps([_element("m0"), _element("m1", custom="kept")]),
                    location_json=None,
                    shared_contacts_json=None,
                    referral_json=None,
                    reply_id=None,
                    quoted_provider_message_id=None,
                    provider_message_id="wamid.media",
                    provider_timestamp=datetime.now(UTC),
                    error_code=None,
                    error_message=None,
                )
            ],
        )
    assert stored is not None
    message_id, _ = stored
    return tenant_id, channel_id, message_id


def _media(db: Engine, message_id: int) -> list[dict[str, object]]:
    with system_tx(db) as conn:
        raw = conn.execute(
            text("SELECT media::text FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    return list(json.loads(raw))


def test_get_media_item(clean_db: Engine, message: tuple[int, int, int]) -> None:
    tenant_id, channel_id, message_id = message
    with tenant_tx(clean_db, tenant_id) as conn:
        item = get_media_item(conn, message_id, 1)
        assert get_media_item(conn, message_id, 2) is None
        assert get_media_item(conn, message_id + 99, 0) is None
    assert item is not None
    assert (item.tenant_id, item.channel_id) == (tenant_id, channel_id)
    assert item.media.provider_media_id == "m1"
    assert item.download_status is None
    with tenant_tx(clean_db, tenant_id + 1) as conn:  # row-level security hides it
        assert get_media_item(conn, message_id, 0) is None


def test_mark_media_stored_keeps_everything_else(
    clean_db: Engine, message: tuple[int, int, int]
) -> None:
    tenant_id, _, message_id = message
    before = _media(clean_db, message_id)
    with tenant_tx(clean_db, tenant_id) as conn:
        changed = mark_media(
            conn,
            message_id=message_id,
            index=1,
            status="stored",
            storage_uri="local:tenants/1/media/1-1.jpg",
            size=1234,
            error=None,
        )
    assert changed
    after = _media(clean_db, message_id)
    assert after[0] == before[0]
    assert after[1] == {
        **before[1],
        "download_status": "stored",
        "storage_uri": "local:tenants/1/media/1-1.jpg",
        "size": 1234,
        "download_error": None,
    }
    with tenant_tx(clean_db, tenant_id) as conn:
        item = get_media_item(conn, message_id, 1)
    assert item is not None
    assert (item.download_status, item.storage_uri) == ("stored", "local:tenants/1/media/1-1.jpg")


def test_mark_media_failed_keeps_metadata_and_never_undoes_a_success(
    clean_db: Engine, message: tuple[int, int, int]
) -> None:
    tenant_id, _, message_id = message
    before = _media(clean_db, message_id)
    with tenant_tx(clean_db, tenant_id) as conn:
        assert mark_media(
            conn,
            message_id=message_id,
            index=0,
            status="failed",
            storage_uri=None,
            size=None,
            error="x" * 900,
        )
    after = _media(clean_db, message_id)
    assert after[0] == {**before[0], "download_status": "failed", "download_error": "x" * 500}
    assert after[1] == before[1]
    with tenant_tx(clean_db, tenant_id) as conn:
        assert mark_media(
            conn,
            message_id=message_id,
            index=0,
            status="stored",
            storage_uri="local:a",
            size=1,
            error=None,
        )
        assert not mark_media(
            conn,
            message_id=message_id,
            index=0,
            status="failed",
            storage_uri=None,
            size=None,
            error="late",
        )
        assert not mark_media(
            conn,
            message_id=message_id,
            index=5,
            status="failed",
            storage_uri=None,
            size=None,
            error="no such item",
        )
    final = _media(clean_db, message_id)
    assert final[0]["download_status"] == "stored"
    assert final[0]["caption"] == "look"
    assert len(final) == 2


def test_mark_media_requires_a_uri_when_stored() -> None:
    with pytest.raises(ValueError):
        mark_media(
            None,  # type: ignore[arg-type]  # refused before any SQL
            message_id=1,
            index=0,
            status="stored",
            storage_uri=None,
            size=None,
            error=None,
        )


def test_get_media_item_refuses_a_malformed_element(
    clean_db: Engine, message: tuple[int, int, int]
) -> None:
    tenant_id, _, message_id = message
    with tenant_tx(clean_db, tenant_id) as conn:
        conn.execute(
            text('UPDATE messages SET media = \'[42, {"type": "nope"}]\' WHERE id = :id'),
            {"id": message_id},
        )
        with pytest.raises(InvalidPayloadError, match="not an object"):
            get_media_item(conn, message_id, 0)
        with pytest.raises(InvalidPayloadError, match="bad fields"):
            get_media_item(conn, message_id, 1)
