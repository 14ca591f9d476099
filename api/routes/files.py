"""`/v1/files`: upload, metadata, content."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.schemas.files import FileOut
from api.services.files import store_upload
from api.upload import receive_file
from core.files import get_file

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", status_code=201, response_model=FileOut)
async def upload_file(
    request: Request, principal: PrincipalDep, resources: ResourcesDep
) -> FileOut:
    """Upload one file as the multipart field `file` (size-capped, sniffed, hashed)."""
    cap = resources.settings.max_upload_bytes
    upload = await receive_file(request, cap)

    def _record() -> FileOut:
        # This route's one commit: opened only once the body has been received.
        with resources.db.transaction() as session:
            row = store_upload(session, resources.store, principal.tenant_id, upload, cap)
            return FileOut.from_row(row)

    try:
        return await run_in_threadpool(_record)
    finally:
        upload.path.unlink(missing_ok=True)


@router.get("/{file_id}", response_model=FileOut)
def file_metadata(file_id: str, principal: PrincipalDep, session: SessionDep) -> FileOut:
    """A file's metadata."""
    return FileOut.from_row(get_file(session, principal.tenant_id, file_id))


@router.get("/{file_id}/content")
def file_content(
    file_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> StreamingResponse:
    """A file's bytes, streamed."""
    row = get_file(session, principal.tenant_id, file_id)
    return StreamingResponse(
        resources.store.iter_bytes(row.storage_key),
        media_type=row.content_type,
        headers={"Content-Length": str(row.bytes)},
    )
