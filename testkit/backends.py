"""What points nightowl at the real test services: a fresh database, the S3 settings, a key."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.auth import create_key
from core.db import Database
from core.settings import Settings
from testkit.services import S3Service


def fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on the server of `server_url`; returns its URL."""
    name = f"t_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def s3_values(s3: S3Service) -> dict[str, object]:
    """The Settings fields that point at the S3 service `s3`."""
    return {
        "s3_endpoint_url": s3.endpoint_url,
        "s3_bucket": s3.bucket,
        "s3_access_key_id": s3.access_key,
        "s3_secret_access_key": s3.secret_key,
        "s3_region": s3.region,
    }


def new_tenant_key(settings: Settings, tenant: str) -> str:
    """A new API key of `tenant` in the (migrated) database of `settings`."""
    db = Database(settings.sqlalchemy_url)
    with db.transaction() as session:
        key = create_key(session, tenant)
    db.dispose()
    return key
