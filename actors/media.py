"""Media actor: download one inbound media item into the media store, off the inbound path."""

from __future__ import annotations

import logging

from actors import deps
from actors.broker import actor
from actors.middleware import is_last_attempt
from pipelines.media import MEDIA_QUEUE, download

log = logging.getLogger(__name__)


# Downloads run up to the provider's media timeout (60 s) on files of up to 100 MB.
@actor(queue_name=MEDIA_QUEUE, time_limit_ms=300_000)
def download_media(message_id: int, index: int) -> None:
    """Download messages.media[index]. Safe to run any number of times: stored is stored."""
    d = deps.current()
    outcome = download(
        message_id,
        index,
        db=d.db,
        adapters=d.adapters,
        http=d.http,
        storage=d.storage,
        max_bytes=d.settings.MEDIA_MAX_BYTES,
        allowed=d.media_allowed_types,
        last_attempt=is_last_attempt(d.settings.MAX_RETRIES),
    )
    log.info(
        "media download done",
        extra={"stage": "download", "message_id": message_id, "index": index, "outcome": outcome},
    )
