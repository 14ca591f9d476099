"""Object storage behind one interface: S3 through boto3 (any endpoint), or a local folder.

Keys are derived from ids (`tenants/{tenant}/files/{file}`, `tenants/{tenant}/jobs/{job}/...`),
never from user file names. Uploads stream through a reader that counts and hashes, and stop with
`TooLarge` as soon as the cap is passed. The S3 store rides out a short outage (a restart of the
S3 service): a call that cannot reach the endpoint is tried again with backoff for up to
`storage_retry_seconds`, then fails with `ServiceUnavailable`; otherwise every worker stage
running during a restart would burn its attempts within a second and fail its job.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from core.errors import NotFound, ServiceUnavailable, TooLarge
from core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_SIZE = 1024 * 1024
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)
_T = TypeVar("_T")


@dataclass(frozen=True)
class StoredObject:
    """What an upload wrote: its key, size and sha256."""

    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    """What the API and the workers need from object storage."""

    def put_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        """Store a stream under `key`; raise TooLarge past `max_bytes` and keep nothing."""

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing what was there."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object; NotFound when absent."""

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        """The object in pieces, for streaming it to a client."""

    def download(self, key: str, path: Path) -> None:
        """Copy the object into a local file."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    def presigned_url(self, key: str, filename: str | None = None) -> str | None:
        """A short-lived GET URL for `key`, or None when the store has none (local folder)."""

    def local_path(self, key: str) -> Path | None:
        """The object's file when the store keeps objects as local files, else None."""

    def check(self) -> None:
        """Raise ServiceUnavailable unless the store answers."""


class _CappedHashingReader:
    """A file-like reader that hashes and counts, and raises TooLarge past its cap."""

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size and size > 0 else _READ_SIZE)
        self.size += len(data)
        if self.size > self._max:
            raise TooLarge(f"upload exceeds the limit of {self._max} bytes")
        self.digest.update(data)
        return data


def validate_key(key: str) -> str:
    """Refuse keys that could climb out of their prefix; every key is built from ids."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in key:
        raise ValueError(f"invalid object key: {key!r}")
    return key


class LocalStore:
    """Objects as files under one folder: the embedded default."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = _CappedHashingReader(stream, max_bytes)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while data := reader.read(_READ_SIZE):
                    out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, reader.size, reader.digest.hexdigest())

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no object {key}") from None

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key}")

        def _chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while data := f.read(_READ_SIZE):
                    yield data

        return _chunks()

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"no object {key}")
        shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def presigned_url(self, key: str, filename: str | None = None) -> str | None:
        return None

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise ServiceUnavailable(f"storage folder {self.root} is not writable")


class S3Store:
    """Objects in an S3 bucket through boto3: AWS, MinIO, SeaweedFS."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        presign_expiry_seconds: int,
        presign_client: S3Client | None = None,
        retry_seconds: float = 0.0,
    ) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self.bucket = bucket
        self.presign_expiry_seconds = presign_expiry_seconds
        # Presigning is local (no request); a second client signs for the public endpoint.
        self.presign_client = presign_client or client

    def put_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        reader = _CappedHashingReader(stream, max_bytes)
        try:
            # upload_fileobj aborts its multipart upload when the reader raises.
            self.client.upload_fileobj(reader, self.bucket, validate_key(key))  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"object storage failed: {exc}") from exc
        return StoredObject(key, reader.size, reader.digest.hexdigest())

    def _reaching(self, call: Callable[[], _T]) -> _T:
        """`call()`, tried again with backoff while the endpoint is unreachable (bounded)."""
        deadline, pause = time.monotonic() + self.retry_seconds, 0.25
        while True:
            try:
                return call()
            except _UNREACHABLE:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 4.0)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._reaching(
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type
                )
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"object storage failed: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_bytes(key))

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        try:
            body = self._reaching(
                lambda: self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
            )["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"no object {key}") from None
            raise ServiceUnavailable(f"object storage failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"object storage failed: {exc}") from exc
        return iter(body.iter_chunks(_READ_SIZE))

    def download(self, key: str, path: Path) -> None:
        with path.open("wb") as out:
            for data in self.iter_bytes(key):
                out.write(data)

    def exists(self, key: str) -> bool:
        try:
            self._reaching(
                lambda: self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise ServiceUnavailable(f"object storage failed: {exc}") from exc
        return True

    def presigned_url(self, key: str, filename: str | None = None) -> str | None:
        params = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.presign_client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_expiry_seconds
        )

    def local_path(self, key: str) -> Path | None:
        return None

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"object storage unavailable: {exc}") from exc


def s3_client(settings: Settings, endpoint_url: str | None = None) -> S3Client:
    """A boto3 S3 client with the service's credentials, at `endpoint_url` (default: the
    service's endpoint): path-style, bounded retries and timeouts."""
    secret = settings.s3_secret_access_key
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def make_store(settings: Settings) -> ObjectStore:
    """The S3 store when S3 settings are given, else the local folder under `home`."""
    if not settings.s3_bucket:
        return LocalStore(settings.storage_dir)
    public = settings.s3_public_endpoint_url
    return S3Store(
        s3_client(settings),
        settings.s3_bucket,
        settings.presign_expiry_seconds,
        s3_client(settings, public) if public else None,
        settings.storage_retry_seconds,
    )


def file_key(tenant_id: str, file_id: str) -> str:
    """Where an uploaded file's bytes live."""
    return f"tenants/{tenant_id}/files/{file_id}"


def job_key(tenant_id: str, job_id: str, name: str) -> str:
    """Where a job's artifact or working object `name` lives."""
    return f"tenants/{tenant_id}/jobs/{job_id}/{name}"
