"""Files: one way to store a stream or bytes as a tenant's `File` row plus its object, and the
tenant's files looked up.

Every writer goes through `put_file`: uploads and `nightowl run` (`store_local_file`, which sniffs
the content), the workers' URL fetch and schedule firing (which record the row only on a
condition, so they add it themselves), and batch result files (`store_file`). Keys in object
storage are built from ids only; the user's file name is kept for display (`clean_filename`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from core.db.models import File
from core.db.types import new_id
from core.errors import UnsupportedMedia
from core.sniff import SNIFF_BYTES, sniff_content_type
from core.storage import ObjectStore, file_key
from core.tenancy import owned


def clean_filename(raw: str) -> str:
    """A display name: the last path component, no control characters, at most 255 characters.

    It is shown back to the user and used in Content-Disposition, never in a key or a path.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[:255] or "upload"


def put_file(
    store: ObjectStore,
    tenant_id: str,
    filename: str,
    content_type: str,
    data: bytes | BinaryIO,
    max_bytes: int | None = None,
) -> File:
    """Write `data` (bytes, or a stream read to its end and refused past `max_bytes`) under a new
    file id of the tenant; returns its row, not yet added to any session."""
    file_id = new_id("file")
    key = file_key(tenant_id, file_id)
    if isinstance(data, bytes):
        store.put_bytes(key, data, content_type)
        size, sha256 = len(data), hashlib.sha256(data).hexdigest()
    else:
        assert max_bytes is not None, "a stream needs its size cap"
        stored = store.put_stream(key, data, max_bytes)
        size, sha256 = stored.size, stored.sha256
    return File(
        id=file_id,
        tenant_id=tenant_id,
        filename=filename,
        content_type=content_type,
        bytes=size,
        sha256=sha256,
        storage_key=key,
    )


def store_file(
    session: Session,
    store: ObjectStore,
    tenant_id: str,
    filename: str,
    data: bytes | BinaryIO,
    content_type: str,
    max_bytes: int | None = None,
) -> File:
    """Store `data` as a new file of the tenant and record it."""
    row = put_file(store, tenant_id, filename, content_type, data, max_bytes)
    session.add(row)
    session.flush()
    return row


def store_local_file(
    session: Session, store: ObjectStore, tenant_id: str, path: Path, filename: str, max_bytes: int
) -> File:
    """Store a file on local disk (a spooled upload, or a path given to `nightowl run`) and record
    it; 415 when no job kind can read its content."""
    with path.open("rb") as stream:
        content_type = sniff_content_type(stream.read(SNIFF_BYTES), filename)
        if content_type is None:
            raise UnsupportedMedia(f"unsupported file type: {filename}")
        stream.seek(0)
        return store_file(session, store, tenant_id, filename, stream, content_type, max_bytes)


def get_file(session: Session, tenant_id: str, file_id: str) -> File:
    """The tenant's file `file_id`; another tenant's id is NotFound like an unknown one."""
    return owned(session, File, tenant_id, file_id, "file")
