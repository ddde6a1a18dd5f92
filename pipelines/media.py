"""download: fetch an inbound media item's bytes, check them against the policy, store them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import httpx
from sqlalchemy import Connection, Engine

from adapters.email import attachment_bytes
from adapters.email.mail import SYNTHETIC_PREFIX
from engine.db import system_tx
from engine.errors import PermanentError, RateLimitedError, RetryableError
from engine.events import ChannelConnection, ChannelType, Media, MediaContent
from engine.media import (
    MediaStorage,
    StorageUnavailableError,
    base_type,
    check_media,
    media_key,
)
from engine.store.channels import get_channel
from engine.store.media import (
    MediaItem,
    get_media_item,
    get_webhook_body,
    mark_media,
    mark_media_attempt,
)

log = logging.getLogger(__name__)

MEDIA_QUEUE = "media"
# How far back the sweep looks for media nobody downloaded: past that, the provider has
# usually expired its copy (WhatsApp media URLs live for days, not weeks).
SWEEP_WITHIN_S = 7 * 24 * 3600

DownloadOutcome = Literal["stored", "already_stored", "gone"]


class MediaSource(Protocol):
    """The part of a channel adapter a download needs."""

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent: ...


class MediaGoneError(PermanentError):
    """What held the media (an e-mail's webhook body) no longer exists."""


def download(
    message_id: int,
    index: int,
    *,
    db: Engine,
    adapters: Mapping[ChannelType, MediaSource],
    http: httpx.Client,
    storage: MediaStorage,
    max_bytes: int,
    allowed: Sequence[str],
    last_attempt: bool = False,
) -> DownloadOutcome:
    """Download messages.media[index] of an inbound message into `storage`.

    Side effects: one provider fetch (or a read of the inbox body for e-mail), one storage
    write under a key made of ids, and the outcome written into the media element (attempt
    count, then stored with uri and size, or failed with the reason). The message itself is
    never touched otherwise, so a failed download loses nothing.

    Idempotent: an item already stored is left alone, and a repeated download overwrites the
    same storage key. Raises PermanentError (policy refusal, provider refusal, nothing to
    fetch) after marking the item failed; RetryableError to retry, marking the item failed
    first when `last_attempt`. A storage outage (StorageUnavailableError) is never recorded on
    the item: the media is not at fault, and a dead-letter requeue finishes the job.
    """
    try:
        with system_tx(db) as conn:
            item = get_media_item(conn, message_id, index)
            if item is None:
                return "gone"
            if item.download_status == "stored":
                return "already_stored"
            channel = _connection(conn, item)
            body = _email_body(conn, item) if channel.type is ChannelType.EMAIL else None
            mark_media_attempt(conn, message_id=message_id, index=index)
        content = _fetch(item, channel, body, adapters=adapters, http=http)
        check_media(content, max_bytes=max_bytes, allowed=allowed)
        key = media_key(item.tenant_id, message_id, index, content.filename, content.mime_type)
        uri = storage.put(key, content.data, content_type=base_type(content.mime_type))
    except PermanentError as exc:
        _fail(db, message_id, index, exc)
        raise
    except StorageUnavailableError:
        raise
    except RetryableError as exc:
        # Waiting for a rate limit is not an attempt (the middleware does not count it).
        if last_attempt and not isinstance(exc, RateLimitedError):
            _fail(db, message_id, index, exc)
        raise
    with system_tx(db) as conn:
        mark_media(
            conn,
            message_id=message_id,
            index=index,
            status="stored",
            storage_uri=uri,
            size=len(content.data),
            error=None,
        )
    return "stored"


def _connection(conn: Connection, item: MediaItem) -> ChannelConnection:
    channel = get_channel(conn, item.channel_id)
    if channel is None:  # channels cascade to their messages; seen only mid-deletion
        raise MediaGoneError(f"channel {item.channel_id} no longer exists")
    if channel.status == "disconnected":
        # Its provider credentials are no longer ours to use; retrying would never succeed.
        raise MediaGoneError(f"channel {item.channel_id} is disconnected")
    return channel.connection()


def email_inbox_key(provider_message_id: str) -> str:
    """The inbox dedupe key of the webhook that carried this mail.

    Mirrors EmailAdapter.dedupe_key: the Message-ID behind `mid:`, a synthetic id as it is.
    """
    if provider_message_id.startswith(SYNTHETIC_PREFIX):
        return provider_message_id
    return "mid:" + provider_message_id


def _email_body(conn: Connection, item: MediaItem) -> tuple[bytes, str]:
    if item.provider_message_id is None:
        raise MediaGoneError("the message has no provider id to find its webhook by")
    found = get_webhook_body(
        conn, channel_id=item.channel_id, dedupe_key=email_inbox_key(item.provider_message_id)
    )
    if found is None:
        raise MediaGoneError("the webhook that carried this attachment is no longer stored")
    return found.body, found.content_type


def _fetch(
    item: MediaItem,
    channel: ChannelConnection,
    email_body: tuple[bytes, str] | None,
    *,
    adapters: Mapping[ChannelType, MediaSource],
    http: httpx.Client,
) -> MediaContent:
    """The bytes, with the type and name the webhook gave when the download has none."""
    if email_body is not None:
        if not item.media.provider_media_id:
            raise PermanentError("e-mail attachment without a form part reference")
        content = attachment_bytes(*email_body, item.media.provider_media_id)
    else:
        adapter = adapters.get(channel.type)
        if adapter is None:
            raise PermanentError(f"no adapter can fetch media on {channel.type} channels")
        content = adapter.fetch_media(item.media, channel=channel, http=http)
    return content.model_copy(
        update={
            "mime_type": content.mime_type or item.media.mime_type,
            "filename": content.filename or item.media.filename,
        }
    )


def _fail(db: Engine, message_id: int, index: int, exc: Exception) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    with system_tx(db) as conn:
        mark_media(
            conn,
            message_id=message_id,
            index=index,
            status="failed",
            storage_uri=None,
            size=None,
            error=reason,
        )
    log.info(
        "media download failed",
        extra={
            "stage": "download",
            "message_id": message_id,
            "index": index,
            "error": type(exc).__name__,
        },
    )
