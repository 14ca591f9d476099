"""The real services the suite runs on answer the way the rest of the suite relies on."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import sqlalchemy as sa
from botocore.exceptions import ClientError

from testkit.services import S3Service, start_postgres, start_valkey

pytestmark = pytest.mark.services


def _libpq_url(sqlalchemy_url: str) -> str:
    return sa.make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def s3_prefix(s3_service: S3Service) -> Iterator[str]:
    prefix = f"test-services/{uuid.uuid4().hex}/"
    yield prefix
    client = s3_service.client()
    listed = client.list_objects_v2(Bucket=s3_service.bucket, Prefix=prefix)
    for item in listed.get("Contents", []):
        client.delete_object(Bucket=s3_service.bucket, Key=item["Key"])


def test_postgres_select_one(postgres_url: str) -> None:
    """PostgreSQL answers `select 1` over plain psycopg at the fixture's URL."""
    with psycopg.connect(_libpq_url(postgres_url), connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_database()").fetchone() == ("nightowl",)


def test_postgres_create_insert_select(engine: sa.Engine) -> None:
    """A table is created, filled and read back through SQLAlchemy, then dropped."""
    table = sa.Table(
        f"services_check_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"name": "a"}, {"name": "b"}])
        with engine.connect() as conn:
            names = conn.execute(sa.select(table.c.name).order_by(table.c.id)).scalars().all()
        assert names == ["a", "b"]
    finally:
        table.drop(engine)


def test_valkey_set_get_and_policy(redis_url: str) -> None:
    """Valkey stores and returns a key, and never evicts keys (`noeviction`), as Celery needs."""
    client = redis.Redis.from_url(redis_url)
    key = f"test-services:{uuid.uuid4().hex}"
    try:
        assert client.set(key, b"value", ex=60)
        assert client.get(key) == b"value"
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        client.delete(key)
        client.close()


def test_s3_put_get_list(s3_service: S3Service, s3_prefix: str) -> None:
    """Objects put into the bucket come back whole and in a prefix listing."""
    client = s3_service.client()
    for name in ("a.txt", "b.txt"):
        client.put_object(Bucket=s3_service.bucket, Key=s3_prefix + name, Body=name.encode())
    body = client.get_object(Bucket=s3_service.bucket, Key=s3_prefix + "a.txt")["Body"].read()
    assert body == b"a.txt"
    listed = client.list_objects_v2(Bucket=s3_service.bucket, Prefix=s3_prefix)
    assert [item["Key"] for item in listed["Contents"]] == [
        s3_prefix + "a.txt",
        s3_prefix + "b.txt",
    ]


def test_s3_presigned_get(s3_service: S3Service, s3_prefix: str) -> None:
    """A presigned GET URL serves the object to a plain HTTP client without credentials."""
    client = s3_service.client()
    key = s3_prefix + "presigned.bin"
    client.put_object(Bucket=s3_service.bucket, Key=key, Body=b"\x00\x01payload")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_service.bucket, "Key": key}, ExpiresIn=60
    )
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"\x00\x01payload"
    unsigned = httpx.get(url.split("?", 1)[0], timeout=10)
    assert unsigned.status_code == 403


def test_s3_wrong_secret_refused(s3_service: S3Service) -> None:
    """A request signed with the wrong secret key is refused (real SigV4 checking)."""
    client = s3_service.client(secret_key=s3_service.secret_key[::-1] + "x")
    with pytest.raises(ClientError) as caught:
        client.list_objects_v2(Bucket=s3_service.bucket, MaxKeys=1)
    assert caught.value.response["Error"]["Code"] in {"SignatureDoesNotMatch", "AccessDenied"}


def test_postgres_restart_keeps_url_and_data(tmp_path: Path) -> None:
    """A private PostgreSQL restarts in place with the same URL and data, and stop() ends it."""
    with start_postgres(tmp_path / "pg") as service:
        engine = sa.create_engine(service.url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("create table kept (n int)"))
            conn.execute(sa.text("insert into kept values (42)"))
        old_pid = service.pid
        service.restart()
        assert service.pid != old_pid
        assert not _alive(old_pid)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select n from kept")).scalar_one() == 42
    assert not service.running
    assert not _alive(service.pid)


def test_valkey_stop_leaves_no_process(tmp_path: Path) -> None:
    """A private Valkey answers, restarts on the same port, and is gone after stop()."""
    service = start_valkey(tmp_path / "valkey")
    try:
        client = redis.Redis.from_url(service.url)
        assert client.ping()
        service.restart()
        assert client.ping()
        client.close()
    finally:
        service.stop()
    assert not _alive(service.pid)
