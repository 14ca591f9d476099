"""Object storage: the local folder and S3 (SeaweedFS) behave the same behind one interface."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import pytest

from core.errors import NotFound, TooLarge
from core.settings import Settings
from core.storage import LocalStore, ObjectStore, make_store, validate_key
from testkit.backends import s3_values
from testkit.services import S3Service


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each store implementation."""
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    s3: S3Service = request.getfixturevalue("s3_service")
    values = s3_values(s3) | {"home": tmp_path, "presign_expiry_seconds": 60}
    return make_store(Settings(**values))  # type: ignore[arg-type]


def test_streamed_put_records_size_and_sha256_and_reads_back(store: ObjectStore) -> None:
    """A streamed upload reports its size and sha256 and the bytes read back the same."""
    data = bytes(range(256)) * 9000  # ~2.3 MB: several read calls
    stored = store.put_stream("tenants/t/files/f1", io.BytesIO(data), max_bytes=len(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get_bytes("tenants/t/files/f1") == data
    assert b"".join(store.iter_bytes("tenants/t/files/f1")) == data
    assert store.exists("tenants/t/files/f1")


def test_put_past_the_cap_raises_and_keeps_nothing(store: ObjectStore) -> None:
    """Passing max_bytes raises TooLarge and no object is left under the key."""
    with pytest.raises(TooLarge):
        store.put_stream("tenants/t/files/big", io.BytesIO(b"x" * 10_000), max_bytes=9_999)
    assert not store.exists("tenants/t/files/big")


def test_missing_object_is_not_found(store: ObjectStore) -> None:
    """Reading a key that was never written raises NotFound."""
    with pytest.raises(NotFound):
        store.get_bytes("tenants/t/files/nothing")


def test_presigned_urls_reach_only_their_key(store: ObjectStore) -> None:
    """S3 presigned URLs fetch their object and fail for another key; local has none."""
    store.put_bytes("tenants/t/jobs/j/a.txt", b"alpha", "text/plain")
    store.put_bytes("tenants/t/jobs/j/b.txt", b"beta", "text/plain")
    url = store.presigned_url("tenants/t/jobs/j/a.txt", filename="a.txt")
    if isinstance(store, LocalStore):
        assert url is None
        return
    assert url is not None
    assert httpx.get(url).content == b"alpha"
    forged = url.replace("a.txt?", "b.txt?", 1)
    assert httpx.get(forged).status_code == 403


@pytest.mark.parametrize("key", ["../x", "a/../b", "/abs", "a//b", "a/./b", "a\0b", ""])
def test_keys_that_could_escape_are_refused(key: str) -> None:
    """Keys with traversal, absolute paths, empty parts or NUL are refused."""
    with pytest.raises(ValueError, match="invalid object key"):
        validate_key(key)


def test_presigned_urls_use_the_public_endpoint_when_set(
    s3_service: S3Service, tmp_path: Path
) -> None:
    """With a public endpoint set, presigned URLs name it and work through it."""
    public = s3_service.endpoint_url.replace("127.0.0.1", "localhost")
    values = s3_values(s3_service) | {"home": tmp_path, "s3_public_endpoint_url": public}
    store = make_store(Settings(**values))  # type: ignore[arg-type]
    store.put_bytes("tenants/t/jobs/j/p.txt", b"public", "text/plain")
    url = store.presigned_url("tenants/t/jobs/j/p.txt")
    assert url is not None and url.startswith(public + "/")
    assert httpx.get(url).content == b"public"
