"""Media policy (size, types, keys) and the local and S3 media stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import ConfigError
from engine.errors import PermanentError, RetryableError
from engine.events import MediaContent
from engine.media import (
    DEFAULT_ALLOWED_TYPES,
    MediaNotFoundError,
    MediaRejectedError,
    StorageUnavailableError,
    check_media,
    media_key,
    parse_allowed_types,
)
from engine.media_storage import LocalMediaStorage, S3MediaStorage, storage_from_settings

# --- policy -------------------------------------------------------------------------------


def _content(size: int, mime: str | None, filename: str | None = None) -> MediaContent:
    return MediaContent(data=b"x" * size, mime_type=mime, filename=filename)


def test_check_media_accepts_allowed_types_within_the_limit() -> None:
    for mime in ("image/jpeg", "audio/ogg; codecs=opus", "VIDEO/MP4", "application/pdf"):
        check_media(_content(10, mime), max_bytes=10, allowed=DEFAULT_ALLOWED_TYPES)


def test_check_media_rejects_too_large_and_empty() -> None:
    with pytest.raises(MediaRejectedError, match="11 bytes"):
        check_media(_content(11, "image/png"), max_bytes=10, allowed=["image/*"])
    with pytest.raises(MediaRejectedError, match="empty"):
        check_media(_content(0, "image/png"), max_bytes=10, allowed=["image/*"])
    assert issubclass(MediaRejectedError, PermanentError)


def test_check_media_matches_wildcards_and_exact_types() -> None:
    allowed = ["image/*", "application/pdf"]
    check_media(_content(1, "image/webp"), max_bytes=10, allowed=allowed)
    for mime in ("application/zip", "imagex/png", "application/pdfx", "text/html"):
        with pytest.raises(MediaRejectedError, match="not allowed"):
            check_media(_content(1, mime), max_bytes=10, allowed=allowed)
    check_media(_content(1, "application/zip"), max_bytes=10, allowed=["*/*"])


def test_check_media_guesses_a_missing_type_from_the_file_name() -> None:
    check_media(_content(1, None, "scan.PDF"), max_bytes=10, allowed=["application/pdf"])
    with pytest.raises(MediaRejectedError, match="unknown"):
        check_media(_content(1, None, "noextension"), max_bytes=10, allowed=["*/*"])
    with pytest.raises(MediaRejectedError, match="unknown"):
        check_media(_content(1, "not a type"), max_bytes=10, allowed=["*/*"])


def test_parse_allowed_types() -> None:
    assert parse_allowed_types(" image/*, application/PDF ,") == ("image/*", "application/pdf")
    with pytest.raises(ValueError, match="nonsense"):
        parse_allowed_types("image/*,nonsense")


def test_media_key_is_deterministic_tenant_prefixed_and_safe() -> None:
    key = media_key(3, 42, 1, "holiday photo.JPG", "image/jpeg")
    assert key == "tenants/3/media/42-1.jpg"
    assert media_key(3, 42, 1, "holiday photo.JPG", "image/jpeg") == key
    assert media_key(3, 42, 0, None, "audio/ogg; codecs=opus") == "tenants/3/media/42-0.ogg"
    assert media_key(3, 42, 0, None, "application/pdf") == "tenants/3/media/42-0.pdf"
    assert media_key(3, 42, 0, "../../etc/passwd", None) == "tenants/3/media/42-0"
    assert media_key(3, 42, 0, "evil.sh;rm -rf", "video/mp4") == "tenants/3/media/42-0.mp4"
    assert media_key(3, 42, 0, None, None) == "tenants/3/media/42-0"
    with pytest.raises(ValueError):
        media_key(-1, 42, 0, None, None)


# --- local storage ------------------------------------------------------------------------


def test_local_round_trip_and_delete(tmp_path: Path) -> None:
    store = LocalMediaStorage(tmp_path / "media")
    uri = store.put("tenants/1/media/5-0.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    assert uri == "local:tenants/1/media/5-0.jpg"
    assert (tmp_path / "media" / "tenants/1/media/5-0.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert store.get(uri) == b"\xff\xd8jpeg"
    store.delete(uri)
    store.delete(uri)  # deleting twice is fine
    with pytest.raises(MediaNotFoundError):
        store.get(uri)


@pytest.mark.parametrize(
    "key",
    ["../outside", "a/../../b", "/etc/passwd", "a//b", "", ".hidden", "a/./b", "a\\b", "a b"],
)
def test_local_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    store = LocalMediaStorage(tmp_path / "media")
    with pytest.raises(ValueError):
        store.put(key, b"x", content_type=None)
    with pytest.raises(ValueError):
        store.get("local:" + key)
    assert not (tmp_path / "outside").exists()


def test_local_refuses_foreign_uris_and_symlink_escapes(tmp_path: Path) -> None:
    store = LocalMediaStorage(tmp_path / "media")
    with pytest.raises(ValueError):
        store.get(f"file://{tmp_path}/secret")
    (tmp_path / "media").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "media" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="escapes"):
        store.put("link/file", b"x", content_type=None)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_local_overwrite_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalMediaStorage(tmp_path)
    uri = store.put("k/item.bin", b"first", content_type=None)
    assert store.put("k/item.bin", b"second", content_type=None) == uri
    assert store.get(uri) == b"second"

    def fail_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(StorageUnavailableError):
        store.put("k/item.bin", b"third", content_type=None)
    assert store.get(uri) == b"second"  # the old file is whole
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["item.bin"]
    assert issubclass(StorageUnavailableError, RetryableError)


def test_storage_from_settings(tmp_path: Path) -> None:
    default = storage_from_settings("local", data_dir=tmp_path)
    assert isinstance(default, LocalMediaStorage)
    assert default.root == tmp_path / "media"
    chosen = storage_from_settings("local", data_dir=tmp_path, media_dir=tmp_path / "m")
    assert isinstance(chosen, LocalMediaStorage)
    assert chosen.root == tmp_path / "m"
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        storage_from_settings("s3", data_dir=tmp_path)


# --- S3 (moto) ----------------------------------------------------------------------------


@pytest.fixture
def s3_bucket() -> Iterator[str]:
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="fd-media")
        yield "fd-media"


def _s3(bucket: str, prefix: str = "media") -> S3MediaStorage:
    store = storage_from_settings(
        "s3",
        data_dir=Path("unused"),
        s3_bucket=bucket,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_prefix=prefix,
    )
    assert isinstance(store, S3MediaStorage)
    return store


def test_s3_put_get_delete(s3_bucket: str) -> None:
    import boto3

    store = _s3(s3_bucket)
    uri = store.put("tenants/1/media/5-0.ogg", b"OggS...", content_type="audio/ogg")
    assert uri == "s3://fd-media/media/tenants/1/media/5-0.ogg"
    head = boto3.client("s3", region_name="us-east-1").head_object(
        Bucket=s3_bucket, Key="media/tenants/1/media/5-0.ogg"
    )
    assert head["ContentType"] == "audio/ogg"
    assert store.put("tenants/1/media/5-0.ogg", b"again", content_type=None) == uri
    assert store.get(uri) == b"again"
    store.delete(uri)
    store.delete(uri)
    with pytest.raises(MediaNotFoundError):
        store.get(uri)


def test_s3_rejects_unsafe_keys_and_foreign_uris(s3_bucket: str) -> None:
    store = _s3(s3_bucket)
    with pytest.raises(ValueError):
        store.put("../x", b"x", content_type=None)
    for uri in ("s3://other-bucket/media/a", "s3://fd-media/elsewhere/a", "local:a"):
        with pytest.raises(ValueError):
            store.get(uri)


def test_s3_failures_are_retryable(s3_bucket: str) -> None:
    store = _s3("no-such-bucket")
    with pytest.raises(StorageUnavailableError, match="NoSuchBucket"):
        store.put("a.jpg", b"x", content_type=None)


def test_s3_unreachable_is_retryable() -> None:
    pytest.importorskip("boto3")
    store = S3MediaStorage(
        "fd-media",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
    )
    with pytest.raises(StorageUnavailableError, match="unreachable"):
        store.get("s3://fd-media/a.jpg")
