"""Where a schedule's objects come from: an S3 prefix or a local folder, listed and opened.

Each listed object has a key (the S3 key, or the path relative to the folder, with `/`) and a
version, which is what "new" means: a (key, version) pair a schedule has not taken before.

- S3: the version is the ETag. An object is opened with `IfMatch` on that ETag, so a firing
  copies exactly what it listed; an object replaced in between is left for the next slot.
- Local folder: the version is size and mtime in nanoseconds, not a sha256 of the content:
  hashing would read every file of the folder at every slot. Any write changes the mtime; a
  rewrite that restores both size and mtime (`touch -r`) is not seen. Names starting with a
  dot are skipped (rsync and most tools write partial files under such names), and so are
  symlinks that lead outside the allowed roots. Writers should move finished files in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import ServiceUnavailable
from core.schedules import local_root_of
from core.settings import Settings
from core.storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class SourceObject:
    """One listed object: its key, its version (ETag, or size and mtime), its size in bytes."""

    key: str
    version: str
    size: int


class ObjectChanged(Exception):
    """The object changed between listing and reading; the next slot sees its new version."""


class Source(Protocol):
    """What a firing needs from a source."""

    def list_objects(self) -> list[SourceObject]:
        """Every object of the source; ServiceUnavailable when it cannot be read."""

    def open_object(self, obj: SourceObject) -> Any:
        """A context manager giving a binary stream of exactly the listed version."""


class S3Prefix:
    """Objects under a prefix of a bucket, through the service's S3 endpoint and credentials."""

    def __init__(self, settings: Settings, bucket: str, prefix: str) -> None:
        self.client: S3Client = s3_client(settings)
        self.bucket = bucket
        self.prefix = prefix

    def list_objects(self) -> list[SourceObject]:
        found: list[SourceObject] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue  # a "folder" marker
                    found.append(SourceObject(key, item["ETag"].strip('"'), item["Size"]))
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(
                f"cannot list s3://{self.bucket}/{self.prefix}: {exc}"
            ) from None
        return found

    @contextmanager
    def open_object(self, obj: SourceObject) -> Iterator[BinaryIO]:
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=obj.key, IfMatch=f'"{obj.version}"'
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise ObjectChanged(obj.key) from None
            raise ServiceUnavailable(f"cannot read s3://{self.bucket}/{obj.key}: {exc}") from None
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"cannot read s3://{self.bucket}/{obj.key}: {exc}") from None
        body = response["Body"]
        try:
            yield cast(BinaryIO, body)
        finally:
            body.close()


class LocalFolder:
    """Files below a folder that lies under one of the operator's allowed roots."""

    def __init__(self, settings: Settings, path: str) -> None:
        self.root = local_root_of(settings, path)
        self.allowed = [root.resolve() for root in settings.schedule_local_roots]

    def _inside(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.allowed)

    def list_objects(self) -> list[SourceObject]:
        found: list[SourceObject] = []
        try:
            for folder, dirs, names in os.walk(self.root, followlinks=False):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    path = Path(folder) / name
                    # is_file() follows symlinks: dangling ones and other non-files drop out.
                    if name.startswith(".") or not path.is_file():
                        continue
                    if not self._inside(path.resolve()):
                        continue
                    stat = path.stat()
                    key = path.relative_to(self.root).as_posix()
                    found.append(
                        SourceObject(key, f"{stat.st_size}-{stat.st_mtime_ns}", stat.st_size)
                    )
        except OSError as exc:
            raise ServiceUnavailable(f"cannot list {self.root}: {exc}") from None
        return found

    @contextmanager
    def open_object(self, obj: SourceObject) -> Iterator[BinaryIO]:
        path = self.root / obj.key
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise ObjectChanged(obj.key) from None
        with stream:
            stat = os.fstat(stream.fileno())
            if f"{stat.st_size}-{stat.st_mtime_ns}" != obj.version:
                raise ObjectChanged(obj.key)
            yield stream


def open_source(settings: Settings, source: dict[str, Any]) -> Source:
    """The source a schedule's stored `source` describes."""
    if source["type"] == "s3":
        return S3Prefix(settings, source["bucket"], source.get("prefix", ""))
    return LocalFolder(settings, source["path"])
