"""Which media items to download: after an inbound commit, and when the sweep finds them left."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.store.channels import insert_channel
from engine.store.media import (
    get_stale_media_downloads,
    get_webhook_body,
    mark_media,
    mark_media_attempt,
    media_downloads,
)
from engine.store.tenants import insert_tenant

WEEK_S = 7 * 24 * 3600


def _item(media_id: str, **extra: object) -> dict[str, object]:
    return {"type": "image", "mime_type": "image/jpeg", "provider_media_id": media_id, **extra}


@pytest.fixture
def channel(clean_db: Engine) -> tuple[int, int]:
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
    return tenant_id, channel_id


def _message(
    db: Engine,
    channel: tuple[int, int],
    media: list[Any],
    *,
    direction: str = "in",
    age_s: int = 0,
) -> int:
    tenant_id, channel_id = channel
    with system_tx(db) as conn:
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
        return int(
            conn.execute(
                text(
                    "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, "
                    "direction, type, media, created_at) VALUES (:t, :tk, :k, :c, :d, 'image', "
                    "CAST(:m AS jsonb), now() - make_interval(secs => :age)) RETURNING id"
                ),
                {
                    "t": tenant_id,
                    "tk": ticket_id,
                    "k": contact_id,
                    "c": channel_id,
                    "d": direction,
                    "m": json.dumps(media),
                    "age": age_s,
                },
            ).scalar_one()
        )


def _media(db: Engine, message_id: int) -> list[dict[str, Any]]:
    with system_tx(db) as conn:
        raw = conn.execute(
            text("SELECT media::text FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    return list(json.loads(raw))


def test_media_downloads_lists_items_with_no_outcome_yet(
    clean_db: Engine, channel: tuple[int, int]
) -> None:
    two = _message(clean_db, channel, [_item("a"), _item("b")])
    done = _message(
        clean_db,
        channel,
        [_item("c", download_status="stored"), _item("d", download_status="failed"), _item("e")],
    )
    text_only = _message(clean_db, channel, [])
    sent = _message(clean_db, channel, [_item("f")], direction="out")
    with system_tx(clean_db) as conn:
        found = media_downloads(conn, [sent, text_only, done, two])
        assert media_downloads(conn, []) == []
    assert found == [(two, 0), (two, 1), (done, 2)]


def test_mark_media_attempt_counts_and_keeps_the_rest(
    clean_db: Engine, channel: tuple[int, int]
) -> None:
    message_id = _message(clean_db, channel, [_item("a"), _item("b")])
    with system_tx(clean_db) as conn:
        mark_media_attempt(conn, message_id=message_id, index=1)
        mark_media_attempt(conn, message_id=message_id, index=1)
        mark_media_attempt(conn, message_id=message_id, index=5)  # no such item: nothing
    assert _media(clean_db, message_id) == [_item("a"), _item("b", download_attempts=2)]


def test_the_sweep_offers_only_items_never_attempted_once_per_deadline(
    clean_db: Engine, channel: tuple[int, int]
) -> None:
    lost = _message(clean_db, channel, [_item("a"), _item("b")], age_s=600)
    recent = _message(clean_db, channel, [_item("c")], age_s=10)
    ancient = _message(clean_db, channel, [_item("d")], age_s=WEEK_S + 600)
    settled = _message(
        clean_db,
        channel,
        [_item("e", download_status="stored"), _item("f", download_status="failed")],
        age_s=600,
    )
    retrying = _message(clean_db, channel, [_item("g", download_attempts=1)], age_s=600)
    outbound = _message(clean_db, channel, [_item("h")], direction="out", age_s=600)
    del recent, ancient, settled, retrying, outbound

    with system_tx(clean_db) as conn:
        offered = get_stale_media_downloads(conn, older_than_s=120, within_s=WEEK_S, limit=100)
    assert offered == [(lost, 0), (lost, 1)]
    first, second = _media(clean_db, lost)
    assert first["download_offered_at"] and second["download_offered_at"]
    assert first["provider_media_id"] == "a" and second["provider_media_id"] == "b"

    # The offer restarted the deadline: an immediate second sweep offers nothing twice.
    with system_tx(clean_db) as conn:
        assert get_stale_media_downloads(conn, older_than_s=120, within_s=WEEK_S, limit=100) == []
    with system_tx(clean_db) as conn:  # ...until the deadline passes again
        conn.execute(
            text(
                "UPDATE messages SET media = (SELECT jsonb_agg(e || jsonb_build_object("
                "'download_offered_at', now() - interval '1 hour')) "
                "FROM jsonb_array_elements(media) e) WHERE id = :id"
            ),
            {"id": lost},
        )
        assert get_stale_media_downloads(conn, older_than_s=120, within_s=WEEK_S, limit=1) == [
            (lost, 0)
        ]


def test_a_download_outcome_keeps_the_sweep_away(
    clean_db: Engine, channel: tuple[int, int]
) -> None:
    message_id = _message(clean_db, channel, [_item("a")], age_s=600)
    with system_tx(clean_db) as conn:
        mark_media(
            conn,
            message_id=message_id,
            index=0,
            status="failed",
            storage_uri=None,
            size=None,
            error="too large",
        )
        assert get_stale_media_downloads(conn, older_than_s=120, within_s=WEEK_S, limit=10) == []


def test_get_webhook_body_finds_the_inbox_row_by_its_dedupe_key(
    clean_db: Engine, channel: tuple[int, int]
) -> None:
    tenant_id, channel_id = channel
    with system_tx(clean_db) as conn:
        conn.execute(
            text(
                "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body, content_type) "
                "VALUES (:t, :c, 'mid:abc@example.com', :b, 'multipart/form-data; boundary=x')"
            ),
            {"t": tenant_id, "c": channel_id, "b": b"\x00raw\xff"},
        )
        found = get_webhook_body(conn, channel_id=channel_id, dedupe_key="mid:abc@example.com")
        assert get_webhook_body(conn, channel_id=channel_id, dedupe_key="mid:other") is None
        assert get_webhook_body(conn, channel_id=channel_id + 1, dedupe_key="x") is None
    assert found is not None
    assert (found.body, found.content_type) == (b"\x00raw\xff", "multipart/form-data; boundary=x")
