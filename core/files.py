"""Files: looked up per tenant, and the ones the service writes itself (batch output, retries)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import File
from core.db.types import new_id
from core.errors import NotFound
from core.storage import ObjectStore, file_key


def store_file(
    session: Session,
    store: ObjectStore,
    tenant_id: str,
    filename: str,
    data: bytes,
    content_type: str,
) -> File:
    """Store `data` as a new file of the tenant and record it."""
    file_id = new_id("file")
    key = file_key(tenant_id, file_id)
    store.put_bytes(key, data, content_type)
    row = File(
        id=file_id,
        tenant_id=tenant_id,
        filename=filename,
        content_type=content_type,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=key,
    )
    session.add(row)
    session.flush()
    return row


def get_file(session: Session, tenant_id: str, file_id: str) -> File:
    """The tenant's file `file_id`; another tenant's id is NotFound like an unknown one."""
    row = session.scalar(select(File).where(File.id == file_id, File.tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no file {file_id}")
    return row
