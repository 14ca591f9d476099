"""Uploads: sniff the content, stream it to object storage under an id-derived key, record it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.upload import ReceivedFile
from core.db.models import File
from core.db.types import new_id
from core.errors import UnsupportedMedia
from core.sniff import sniff_content_type
from core.storage import ObjectStore, file_key


def store_upload(
    session: Session, store: ObjectStore, tenant_id: str, upload: ReceivedFile, max_bytes: int
) -> File:
    """Record an upload after storing its bytes; 415 when no job kind can read its content."""
    content_type = sniff_content_type(upload.head, upload.filename)
    if content_type is None:
        raise UnsupportedMedia(f"unsupported file type: {upload.filename}")
    file_id = new_id("file")
    key = file_key(tenant_id, file_id)
    with upload.path.open("rb") as stream:
        stored = store.put_stream(key, stream, max_bytes)
    row = File(
        id=file_id,
        tenant_id=tenant_id,
        filename=upload.filename,
        content_type=content_type,
        bytes=stored.size,
        sha256=stored.sha256,
        storage_key=key,
    )
    session.add(row)
    session.flush()
    return row
