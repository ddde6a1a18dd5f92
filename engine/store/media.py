"""Media items of stored messages: what to download, and the outcome written back in place."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal, NamedTuple

from pydantic import ValidationError
from sqlalchemy import Connection, text

from engine.errors import InvalidPayloadError
from engine.events import Media

MAX_ERROR_CHARS = 500


class MediaItem(NamedTuple):
    """One element of messages.media with what a download needs around it."""

    tenant_id: int
    channel_id: int
    media: Media
    download_status: str | None
    storage_uri: str | None
    provider_message_id: str | None = None


class WebhookBody(NamedTuple):
    """The raw body of an inbox row, as the provider posted it."""

    body: bytes
    content_type: str


def get_media_item(conn: Connection, message_id: int, index: int) -> MediaItem | None:
    """messages.media[index] of a message, or None when the message or the element is absent.

    Raises InvalidPayloadError when the element is not a media object.
    """
    if index < 0:
        return None
    row = conn.execute(
        text(
            "SELECT tenant_id, channel_id, (media -> CAST(:idx AS int))::text, "
            "provider_message_id FROM messages WHERE id = :id"
        ),
        {"id": message_id, "idx": index},
    ).first()
    if row is None or row[2] is None:
        return None
    element = json.loads(row[2])
    if not isinstance(element, dict):
        raise InvalidPayloadError(f"messages.media[{index}] of message {message_id}: not an object")
    try:
        media = Media.model_validate({k: v for k, v in element.items() if k in Media.model_fields})
    except ValidationError as exc:
        raise InvalidPayloadError(
            f"messages.media[{index}] of message {message_id}: {exc.error_count()} bad fields"
        ) from None
    status = element.get("download_status")
    uri = element.get("storage_uri")
    return MediaItem(
        tenant_id=int(row[0]),
        channel_id=int(row[1]),
        media=media,
        download_status=status if isinstance(status, str) else None,
        storage_uri=uri if isinstance(uri, str) else None,
        provider_message_id=row[3],
    )


def mark_media(
    conn: Connection,
    *,
    message_id: int,
    index: int,
    status: Literal["stored", "failed"],
    storage_uri: str | None,
    size: int | None,
    error: str | None,
) -> bool:
    """Record a download's outcome in messages.media[index], keeping every other key and element.

    Adds download_status, storage_uri, size and download_error to the element. A failure never
    overwrites an earlier success (a late failing retry must not hide stored bytes), and keeps
    whatever storage_uri/size the element had. Idempotent. Returns whether the element changed.
    """
    if status == "stored":
        if storage_uri is None or size is None:
            raise ValueError("a stored item needs storage_uri and size")
        patch: dict[str, object] = {
            "download_status": "stored",
            "storage_uri": storage_uri,
            "size": size,
            "download_error": None,
        }
    else:
        patch = {"download_status": "failed", "download_error": (error or "")[:MAX_ERROR_CHARS]}
    if index < 0:
        return False
    row = conn.execute(
        text(
            """
            UPDATE messages
            SET media = jsonb_set(media, ARRAY[CAST(:idx AS text)],
                                  (media -> CAST(:idx AS int)) || CAST(:patch AS jsonb))
            WHERE id = :id
              AND jsonb_typeof(media -> CAST(:idx AS int)) = 'object'
              AND NOT (CAST(:status AS text) = 'failed' AND coalesce(
                       media -> CAST(:idx AS int) ->> 'download_status', '') = 'stored')
            RETURNING id
            """
        ),
        {"id": message_id, "idx": index, "patch": json.dumps(patch), "status": status},
    ).first()
    return row is not None


def mark_media_attempt(conn: Connection, *, message_id: int, index: int) -> None:
    """Count a download attempt in messages.media[index] (`download_attempts`).

    The sweep re-offers only items never attempted: one with an attempt behind it follows the
    broker's retry schedule, and a second offer would only duplicate that work.
    """
    if index < 0:
        return
    conn.execute(
        text(
            """
            UPDATE messages
            SET media = jsonb_set(media, ARRAY[CAST(:idx AS text)],
                                  (media -> CAST(:idx AS int)) || jsonb_build_object(
                                      'download_attempts', coalesce(
                                          (media -> CAST(:idx AS int) ->> 'download_attempts')
                                          ::int, 0) + 1))
            WHERE id = :id AND jsonb_typeof(media -> CAST(:idx AS int)) = 'object'
            """
        ),
        {"id": message_id, "idx": index},
    )


def media_downloads(conn: Connection, message_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(message id, index) of every media item of these inbound messages with no download
    outcome yet, in order: what to enqueue once the transaction that stored them commits."""
    if not message_ids:
        return []
    rows = conn.execute(
        text(
            """
            SELECT m.id, (e.ord - 1)::int
            FROM messages m, jsonb_array_elements(m.media) WITH ORDINALITY AS e(item, ord)
            WHERE m.id = ANY(:ids) AND m.direction = 'in'
              AND jsonb_typeof(e.item) = 'object'
              AND e.item ->> 'download_status' IS NULL
            ORDER BY m.id, e.ord
            """
        ),
        {"ids": list(message_ids)},
    ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def get_stale_media_downloads(
    conn: Connection, *, older_than_s: int, within_s: int, limit: int
) -> list[tuple[int, int]]:
    """(message id, index) of media items whose download was never attempted past the deadline
    (the broker lost the message), among inbound messages created in the last `within_s`.

    Stamps them `download_offered_at` so the next sweep waits another deadline; rows another
    transaction holds are skipped. System scope.
    """
    rows = conn.execute(
        text(
            """
            WITH stale AS (
                SELECT m.id, (e.ord - 1)::int AS idx
                FROM messages m, jsonb_array_elements(m.media) WITH ORDINALITY AS e(item, ord)
                WHERE m.direction = 'in'
                  AND m.media <> '[]'::jsonb
                  AND m.created_at > now() - make_interval(secs => :within)
                  AND jsonb_typeof(e.item) = 'object'
                  AND e.item ->> 'download_status' IS NULL
                  AND coalesce((e.item ->> 'download_attempts')::int, 0) = 0
                  AND coalesce((e.item ->> 'download_offered_at')::timestamptz, m.created_at)
                      < now() - make_interval(secs => :age)
                ORDER BY m.id, e.ord
                LIMIT :limit
            ),
            locked AS (
                SELECT id FROM messages WHERE id IN (SELECT id FROM stale)
                FOR UPDATE SKIP LOCKED
            ),
            offered AS (
                UPDATE messages m
                SET media = (
                    SELECT jsonb_agg(
                        CASE WHEN (e.ord - 1)::int IN (SELECT idx FROM stale s WHERE s.id = m.id)
                             THEN e.item || jsonb_build_object('download_offered_at', now())
                             ELSE e.item END
                        ORDER BY e.ord)
                    FROM jsonb_array_elements(m.media) WITH ORDINALITY AS e(item, ord))
                WHERE m.id IN (SELECT id FROM locked)
                RETURNING m.id
            )
            SELECT s.id, s.idx FROM stale s JOIN offered o ON o.id = s.id ORDER BY s.id, s.idx
            """
        ),
        {"age": older_than_s, "within": within_s, "limit": limit},
    ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def get_webhook_body(conn: Connection, *, channel_id: int, dedupe_key: str) -> WebhookBody | None:
    """The raw body of the channel's inbox row with `dedupe_key`, or None when there is none.

    E-mail attachments exist only in the webhook that carried them; this is where a download
    finds them.
    """
    row = conn.execute(
        text("SELECT body, content_type FROM inbox WHERE channel_id = :c AND dedupe_key = :k"),
        {"c": channel_id, "k": dedupe_key},
    ).first()
    return None if row is None else WebhookBody(body=bytes(row[0]), content_type=str(row[1]))
