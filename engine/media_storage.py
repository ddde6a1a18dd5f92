"""Media stores: a local directory (the default) and S3 or any S3-compatible service."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from config import ConfigError
from engine.media import MediaNotFoundError, MediaStorage, StorageUnavailableError, check_key

LOCAL_SCHEME = "local:"


class LocalMediaStorage:
    """Files under `root`. URIs are `local:<key>`, relative, so the directory can move."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes, *, content_type: str | None) -> str:
        """Write atomically: a reader sees the old file or the new one, never a torn one.

        The content type is not kept: keys carry an extension derived from it (media_key).
        """
        path = self._path(check_key(key))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageUnavailableError(f"media write failed: {exc.strerror}") from exc
        return LOCAL_SCHEME + key

    def get(self, uri: str) -> bytes:
        path = self._path(self._key(uri))
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise MediaNotFoundError(f"no stored media at {uri[:200]}") from None
        except OSError as exc:
            raise StorageUnavailableError(f"media read failed: {exc.strerror}") from exc

    def delete(self, uri: str) -> None:
        path = self._path(self._key(uri))
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailableError(f"media delete failed: {exc.strerror}") from exc

    def _key(self, uri: str) -> str:
        if not uri.startswith(LOCAL_SCHEME):
            raise ValueError("not a local media URI")
        return check_key(uri[len(LOCAL_SCHEME) :])

    def _path(self, key: str) -> Path:
        root = self.root.resolve()
        path = (root / key).resolve()
        # check_key already refuses `..`; this also refuses a symlink pointing out of the root.
        if not path.is_relative_to(root):
            raise ValueError("media key escapes the media directory")
        return path


# S3 error codes that mean "no such object" (HeadObject answers a bare 404).
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3MediaStorage:
    """Objects in one S3 bucket under `prefix`. URIs are `s3://<bucket>/<prefix><key>`.

    Any failure other than a missing object is StorageUnavailableError: the store or its
    configuration is at fault, not the media item, so the download is retried (and reaches the
    dead letters once retries run out) rather than recorded as failed for good.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket is required")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix:
            check_key(prefix.rstrip("/"))
        self.bucket = bucket
        self.prefix = prefix
        self._client = (
            client
            if client is not None
            else _s3_client(
                endpoint_url=endpoint_url,
                region=region,
                access_key=access_key,
                secret_key=secret_key,
            )
        )

    def put(self, key: str, data: bytes, *, content_type: str | None) -> str:
        name = self.prefix + check_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with self._translate(name):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data, **extra)
        return f"s3://{self.bucket}/{name}"

    def get(self, uri: str) -> bytes:
        name = self._name(uri)
        with self._translate(name):
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def delete(self, uri: str) -> None:
        name = self._name(uri)
        with self._translate(name):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def _name(self, uri: str) -> str:
        head = f"s3://{self.bucket}/{self.prefix}"
        if not uri.startswith(head):
            raise ValueError("not a media URI of this bucket")
        return self.prefix + check_key(uri[len(head) :])

    @contextlib.contextmanager
    def _translate(self, name: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise MediaNotFoundError(f"no stored media at {name[:200]}") from None
            raise StorageUnavailableError(f"S3 error {code or 'unknown'}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailableError(f"S3 unreachable: {type(exc).__name__}") from exc


def _s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
) -> Any:
    # boto3 is an optional extra (`pip install flowdesk[s3]`); local storage never needs it.
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ConfigError("MEDIA_STORAGE=s3 needs boto3: pip install 'flowdesk[s3]'") from exc
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        # Bounded waits: a hung store must surface as a retry, not pin a worker thread.
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
    )


def storage_from_settings(
    kind: Literal["local", "s3"],
    *,
    data_dir: Path,
    media_dir: Path | None = None,
    s3_bucket: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
    s3_prefix: str = "",
) -> MediaStorage:
    """The configured store (MEDIA_STORAGE and friends, passed in explicitly).

    Local media lives in MEDIA_DIR, default <FLOWDESK_DATA_DIR>/media. Raises ConfigError
    naming the variable that is missing.
    """
    if kind == "local":
        return LocalMediaStorage(media_dir if media_dir is not None else data_dir / "media")
    if kind == "s3":
        if not s3_bucket:
            raise ConfigError("S3_BUCKET: required when MEDIA_STORAGE=s3")
        return S3MediaStorage(
            s3_bucket,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            access_key=s3_access_key_id,
            secret_key=s3_secret_access_key,
            prefix=s3_prefix,
        )
    raise ConfigError(f"MEDIA_STORAGE: must be local or s3 (got {kind!r})")
