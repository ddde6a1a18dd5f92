"""Media settings: local by default, S3 only with a bucket, limits in range, secrets unechoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.deps import WorkerDeps
from actors.wiring import media_storage
from config import ConfigError, load_settings
from engine.media import DEFAULT_ALLOWED_TYPES
from engine.media_storage import LocalMediaStorage, S3MediaStorage


def test_defaults_store_media_locally_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"FLOWDESK_DATA_DIR": str(tmp_path)})
    assert (settings.MEDIA_STORAGE, settings.MEDIA_MAX_BYTES) == ("local", 16 * 1024 * 1024)
    assert settings.MEDIA_ALLOWED_TYPES is None  # the engine's default list applies
    storage = media_storage(settings)
    assert isinstance(storage, LocalMediaStorage)
    assert storage.root == tmp_path / "media"
    assert not storage.root.exists()  # nothing is created before the first download


def test_media_dir_wins_and_empty_values_mean_unset(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DIR": str(tmp_path / "m"), "S3_BUCKET": "", "S3_REGION": ""})
    storage = media_storage(settings)
    assert isinstance(storage, LocalMediaStorage) and storage.root == tmp_path / "m"
    assert load_settings({"MEDIA_DIR": ""}).MEDIA_DIR is None


def test_allowed_types_are_a_comma_list() -> None:
    settings = load_settings({"MEDIA_ALLOWED_TYPES": " image/* , Application/PDF,,"})
    assert settings.MEDIA_ALLOWED_TYPES == ("image/*", "application/pdf")
    assert load_settings({"MEDIA_ALLOWED_TYPES": ""}).MEDIA_ALLOWED_TYPES is None


def test_worker_deps_fall_back_to_the_engines_allowed_types() -> None:
    def allowed(env: dict[str, str]) -> tuple[str, ...]:
        unused: Any = None
        deps = WorkerDeps(load_settings(env), unused, unused, {}, unused, unused, unused)
        return deps.media_allowed_types

    assert allowed({}) == DEFAULT_ALLOWED_TYPES
    assert allowed({"MEDIA_ALLOWED_TYPES": "audio/*"}) == ("audio/*",)


def test_s3_storage_from_settings() -> None:
    settings = load_settings(
        {
            "MEDIA_STORAGE": "s3",
            "S3_BUCKET": "flowdesk-media",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": "minio",
            "S3_SECRET_ACCESS_KEY": "minio-secret-123",
            "S3_PREFIX": "prod/media",
        }
    )
    storage = media_storage(settings)
    assert isinstance(storage, S3MediaStorage)
    assert (storage.bucket, storage.prefix) == ("flowdesk-media", "prod/media/")


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MEDIA_STORAGE": "s3"}, "S3_BUCKET: required when MEDIA_STORAGE=s3"),
        ({"MEDIA_STORAGE": "gcs"}, "MEDIA_STORAGE:"),
        ({"MEDIA_MAX_BYTES": "10"}, "MEDIA_MAX_BYTES:"),
        ({"MEDIA_MAX_BYTES": str(200 * 1024 * 1024)}, "MEDIA_MAX_BYTES:"),
        ({"MEDIA_ALLOWED_TYPES": "image/*,exe"}, "MEDIA_ALLOWED_TYPES:"),
        ({"S3_PREFIX": "../escape"}, "S3_PREFIX:"),
        ({"S3_BUCKET": "Not_A_Bucket"}, "S3_BUCKET:"),
        ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL:"),
        ({"S3_ACCESS_KEY_ID": "AKIA0000"}, "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"),
    ],
)
def test_bad_media_settings_fail_naming_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].strip().startswith(names)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("S3_SECRET_ACCESS_KEY", "hunter2-secret"),
        ("S3_ACCESS_KEY_ID", "hunter2-key"),
        ("S3_ENDPOINT_URL", "ftp://hunter2@minio"),
    ],
)
def test_s3_credentials_are_never_echoed(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value, "MEDIA_MAX_BYTES": "bad"})
    assert "hunter2" not in str(info.value)
