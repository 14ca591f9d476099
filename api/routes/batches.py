"""`/v1/batches`: create, list, get, cancel, retry (OpenAI Batch API shape)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.schemas import BatchCreate, BatchList, BatchOut
from api.services import batches as service
from core import batch_intake as intake
from core.batch_intake import BatchRequest
from core.batches import request_counts

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", response_model=BatchOut)
def create_batch(
    body: BatchCreate, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """Validate an uploaded JSONL file of job requests and run them; bad lines fail it whole."""
    request = BatchRequest(
        input_file_id=body.input_file_id,
        completion_window=body.completion_window,
        metadata=body.metadata,
        priority=body.priority,
        window=body.window,
        not_before=body.not_before,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
    )
    batch = intake.create_batch(
        session,
        resources.store,
        resources.dispatcher,
        resources.settings,
        principal.tenant_id,
        request,
    )
    return BatchOut.of(batch, request_counts(session, batch))


@router.get("", response_model=BatchList)
def list_batches(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> BatchList:
    """The caller's batches, newest first; `after=<last_id>` for the next page."""
    rows, has_more = service.list_batches(session, principal.tenant_id, limit, after)
    return BatchList(
        data=[BatchOut.of(b, request_counts(session, b)) for b in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
    )


@router.get("/{batch_id}", response_model=BatchOut)
def get_batch(batch_id: str, principal: PrincipalDep, session: SessionDep) -> BatchOut:
    """A batch with its status, request counts and result files."""
    batch = service.get_batch(session, principal.tenant_id, batch_id)
    return BatchOut.of(batch, request_counts(session, batch))


@router.post("/{batch_id}/cancel", response_model=BatchOut)
def cancel_batch(
    batch_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """Cancel the requests that have not finished; finished ones stay in the output."""
    batch = service.cancel_batch(session, resources.dispatcher, principal.tenant_id, batch_id)
    return BatchOut.of(batch, request_counts(session, batch))


@router.post("/{batch_id}/retry", response_model=BatchOut)
def retry_batch(
    batch_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """A new batch over this finished batch's failed and expired requests."""
    old = service.get_batch(session, principal.tenant_id, batch_id)
    batch = intake.retry_batch(
        session, resources.store, resources.dispatcher, resources.settings, old
    )
    return BatchOut.of(batch, request_counts(session, batch))
