"""Media items of stored messages: what to download, and the outcome written back in place."""

from __future__ import annotations

import json
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


def get_media_item(conn: Connection, message_id: int, index: int) -> MediaItem | None:
    """messages.media[index] of a message, or None when the message or the element is absent.

    Raises InvalidPayloadError when the element is not a media object.
    """
    if index < 0:
        return None
    row = conn.execute(
        text(
            "SELECT tenant_id, channel_id, (media -> CAST(:idx AS int))::text "
            "FROM messages WHERE id = :id"
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
