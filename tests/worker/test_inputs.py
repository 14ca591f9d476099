"""Input files reach decoders as local files: in place for the local store, cached from S3."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from core.storage import LocalStore, make_store
from testkit.backends import s3_values
from testkit.services import S3Service
from worker.inputs import InputCache


def test_local_store_inputs_are_used_in_place(tmp_path: Path) -> None:
    """With the local folder, the input's own file is returned, nothing is copied."""
    store = LocalStore(tmp_path / "objects")
    store.put_bytes("tenants/t/files/f", b"abc", "application/octet-stream")
    cache = InputCache(store, tmp_path / "cache", max_bytes=10)
    assert cache.path("tenants/t/files/f") == (tmp_path / "objects/tenants/t/files/f").resolve()
    assert not (tmp_path / "cache").exists()


def test_s3_inputs_are_downloaded_once_and_evicted_past_the_cap(
    s3_service: S3Service, tmp_path: Path
) -> None:
    """From S3 an input is downloaded once, reused, and the oldest is evicted past the cap."""
    store = make_store(Settings(**s3_values(s3_service) | {"home": tmp_path}))  # type: ignore[arg-type]
    store.put_bytes("tenants/t/files/one", b"1" * 600, "application/octet-stream")
    store.put_bytes("tenants/t/files/two", b"2" * 600, "application/octet-stream")
    cache = InputCache(store, tmp_path / "cache", max_bytes=1000)
    first = cache.path("tenants/t/files/one")
    assert first.read_bytes() == b"1" * 600
    assert cache.path("tenants/t/files/one") == first
    second = cache.path("tenants/t/files/two")
    assert second.read_bytes() == b"2" * 600
    assert not first.exists()  # 1200 bytes > 1000: the least recently used went
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [second.name]
