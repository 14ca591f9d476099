"""API keys: random, prefixed `no_`, stored only as SHA-256 hashes, each bound to one tenant.

A key is 32 random bytes (256 bits), so a fast unsalted SHA-256 is enough: nothing can be
brute-forced from a leaked hash. It is found by looking up its hash, which is constant-time with
respect to the secret: the database compares digests, and timing that comparison can tell an
attacker at most how many leading digest bytes of a guess match a stored one, which (SHA-256
being preimage-resistant) says nothing about any key. `hmac.compare_digest` then checks the row
found, so no early-exit string comparison ever runs on secret-dependent data. A revoked key is
refused from the next request on: every request reads its row, nothing is cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import ApiKey, Tenant
from core.db.types import new_id, utcnow
from core.errors import Conflict, Unauthorized

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
    # Lookup by hash, then a constant-time check of the row found (see the module docstring).
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return Principal(row.tenant_id, row.id)


def revoke_key(session: Session, key_prefix_or_id: str) -> int:
    """Revoke a key by its id or its displayed prefix; returns how many were revoked (0 or 1).

    A prefix that matches several live keys (possible, if unlikely) revokes nothing: Conflict,
    so one tenant's revocation can never take another tenant's key with it.
    """
    rows = session.scalars(
        select(ApiKey).where(
            (ApiKey.id == key_prefix_or_id) | (ApiKey.prefix == key_prefix_or_id),
            ApiKey.revoked_at.is_(None),
        )
    ).all()
    if len(rows) > 1:
        raise Conflict(f"{key_prefix_or_id!r} matches {len(rows)} keys; revoke by key id")
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)
