"""API keys: random, prefixed `no_`, stored only as SHA-256 hashes, each bound to one tenant."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import ApiKey, Tenant
from core.db.types import new_id, utcnow
from core.errors import Unauthorized

KEY_PREFIX = "no_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant of a valid, unrevoked key."""

    tenant_id: str
    key_id: str


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant_name: str) -> str:
    """Create (or reuse) the tenant `tenant_name` and a new key for it; returns the key once."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        tenant = Tenant(id=new_id("ten"), name=tenant_name)
        session.add(tenant)
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(id=new_id("key"), tenant_id=tenant.id, key_hash=hash_key(key), prefix=key[:8])
    )
    session.flush()
    return key


def authenticate(session: Session, key: str) -> Principal:
    """The principal of `key`; Unauthorized for a missing, unknown or revoked key."""
    if not key.startswith(KEY_PREFIX):
        raise Unauthorized("invalid API key")
    digest = hash_key(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    # The lookup is by hash; the constant-time compare keeps timing independent of the match.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return Principal(row.tenant_id, row.id)


def revoke_key(session: Session, key_prefix_or_id: str) -> int:
    """Revoke keys by id or by their displayed prefix; returns how many were revoked."""
    rows = session.scalars(
        select(ApiKey).where(
            (ApiKey.id == key_prefix_or_id) | (ApiKey.prefix == key_prefix_or_id),
            ApiKey.revoked_at.is_(None),
        )
    ).all()
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)
