"""Inbound media policy: what may be stored, under which key, and the storage contract."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Protocol

from engine.errors import NotFoundError, PermanentError, RetryableError
from engine.events import MediaContent

DEFAULT_MAX_BYTES = 16 * 1024 * 1024

# What customers send over messaging channels: pictures, voice notes, videos and documents.
DEFAULT_ALLOWED_TYPES: tuple[str, ...] = (
    "image/*",
    "audio/*",
    "video/*",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)


class MediaRejectedError(PermanentError):
    """Downloaded media the policy refuses to keep (too large, empty, or a disallowed type)."""


class MediaNotFoundError(NotFoundError):
    """No stored object behind this storage URI."""


class StorageUnavailableError(RetryableError):
    """The media store failed (disk, network, S3 error): retry, the item is not at fault."""


class MediaStorage(Protocol):
    """Where downloaded media bytes live. Keys come from media_key(); URIs go in messages.media."""

    def put(self, key: str, data: bytes, *, content_type: str | None) -> str:
        """Store `data` under `key`, replacing what was there; return the storage URI.

        Raises ValueError for an unsafe key, StorageUnavailableError when the store fails.
        """
        ...

    def get(self, uri: str) -> bytes:
        """The bytes behind a URI put() returned. Raises MediaNotFoundError, ValueError for a
        URI of another store, StorageUnavailableError."""
        ...

    def delete(self, uri: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        ...


def base_type(mime_type: str | None) -> str | None:
    """`type/subtype` in lower case, parameters (`; codecs=opus`) dropped."""
    if not mime_type:
        return None
    base = mime_type.split(";", 1)[0].strip().lower()
    return base if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", base) else None


def type_allowed(mime_type: str, allowed: Sequence[str]) -> bool:
    """Whether `mime_type` matches one of `allowed` (exact, `type/*`, or `*/*`)."""
    major = mime_type.split("/", 1)[0]
    for pattern in allowed:
        p = pattern.strip().lower()
        if p in ("*", "*/*") or p == mime_type or (p.endswith("/*") and p[:-2] == major):
            return True
    return False


def parse_allowed_types(value: str) -> tuple[str, ...]:
    """MEDIA_ALLOWED_TYPES (comma-separated `type/subtype` or `type/*`) as a tuple.

    Raises ValueError naming the first entry that is not a media-type pattern.
    """
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    for entry in entries:
        if entry not in ("*", "*/*") and base_type(entry.replace("/*", "/x")) is None:
            raise ValueError(f"not a media type pattern: {entry[:60]!r}")
    return entries


def check_media(content: MediaContent, *, max_bytes: int, allowed: Sequence[str]) -> None:
    """Refuse media we must not keep. Pure.

    The type is the provider's, else guessed from the file name; an unknown type is refused,
    since nothing then says what the bytes are. Raises MediaRejectedError.
    """
    size = len(content.data)
    if size == 0:
        raise MediaRejectedError("media is empty")
    if size > max_bytes:
        raise MediaRejectedError(f"media is {size} bytes, more than the {max_bytes} allowed")
    mime = base_type(content.mime_type)
    if mime is None and content.filename:
        mime = base_type(_MIME_DB.guess_type(content.filename, strict=False)[0])
    if mime is None:
        raise MediaRejectedError("media type unknown")
    if not type_allowed(mime, allowed):
        raise MediaRejectedError(f"media type {mime} is not allowed")


# Types messaging channels send that Python's built-in table lacks or maps oddly (audio/ogg
# would become .oga, which few players recognise).
_EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/amr": ".amr",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "video/3gpp": ".3gp",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "text/plain": ".txt",
}
# Built-in defaults only: the machine's /etc/mime.types must not change a key between hosts.
_MIME_DB = mimetypes.MimeTypes()
_SAFE_EXT = re.compile(r"\.[a-z0-9]{1,10}")


def media_extension(filename: str | None, mime_type: str | None) -> str:
    """`.ext` from the file name when it has a plain one, else from the type; may be ""."""
    if filename:
        suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
        if _SAFE_EXT.fullmatch(suffix):
            return suffix
    mime = base_type(mime_type)
    if mime is None:
        return ""
    ext = _EXTENSIONS.get(mime) or _MIME_DB.guess_extension(mime, strict=False) or ""
    return ext if _SAFE_EXT.fullmatch(ext) else ""


def media_key(
    tenant_id: int, message_id: int, index: int, filename: str | None, mime_type: str | None
) -> str:
    """The storage key of a message's `index`-th media item.

    Deterministic, so a retried download overwrites its earlier attempt instead of leaving a
    second copy; made of ids only, so no customer-chosen name ever reaches a path.
    """
    if min(tenant_id, message_id, index) < 0:
        raise ValueError("ids and index must not be negative")
    return f"tenants/{tenant_id}/media/{message_id}-{index}{media_extension(filename, mime_type)}"


_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def check_key(key: str) -> str:
    """`key` if it is a safe relative path (segments of letters, digits, `._-`, none starting
    with a dot); raise ValueError otherwise. Rules out `..`, absolute paths and hidden files."""
    segments = key.split("/")
    if not key or len(key) > 1024 or not all(_KEY_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"unsafe media key {key[:80]!r}")
    return key
