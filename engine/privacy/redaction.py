"""What "without personal data" means for a message row, shared by erasure and retention."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engine.media import MediaNotFoundError, MediaStorage, StorageUnavailableError

log = logging.getLogger(__name__)

# Content columns cleared; ids, direction, status and timestamps stay for statistics.
REDACT_MESSAGE_SET = """
    body = NULL, media = '[]'::jsonb, location = NULL, shared_contacts = NULL,
    referral = NULL, author_name = NULL, author_external_id = NULL, subject = NULL,
    story_url = NULL, media_url = NULL, template = NULL, error_message = NULL,
    redacted_at = now()
"""

# The stored media files of the messages in a subquery named `target`.
MEDIA_URIS_OF = """
    SELECT e ->> 'storage_uri'
    FROM messages m, jsonb_array_elements(m.media) AS e
    WHERE m.id IN ({target}) AND jsonb_typeof(e) = 'object' AND e ? 'storage_uri'
"""


def delete_media_files(storage: MediaStorage, uris: Sequence[str]) -> int:
    """Delete stored files after the rows forgot them; how many went. A store that fails is
    logged and skipped: the rows no longer point at the file, and a rerun finds nothing."""
    deleted = 0
    for uri in uris:
        try:
            storage.delete(uri)
        except MediaNotFoundError:
            continue
        except (StorageUnavailableError, ValueError) as exc:
            log.warning("media file not deleted", extra={"error": type(exc).__name__})
            continue
        deleted += 1
    return deleted
