"""Uploads: a spooled upload stored and recorded through `core.files` (sniffed, id-derived key)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.upload import ReceivedFile
from core.db.models import File
from core.files import store_local_file
from core.storage import ObjectStore


def store_upload(
    session: Session, store: ObjectStore, tenant_id: str, upload: ReceivedFile, max_bytes: int
) -> File:
    """Record an upload after storing its bytes; 415 when no job kind can read its content."""
    return store_local_file(session, store, tenant_id, upload.path, upload.filename, max_bytes)
