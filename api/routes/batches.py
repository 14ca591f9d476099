"""`/v1/batches`: create, list, get, cancel, retry (OpenAI Batch API shape)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.pagination import CursorDep
from api.schemas.batches import BatchCreate, BatchList, BatchOut
from api.services import batches as service
from core.batches import request_counts
from core.db.models import Batch

router = APIRouter(prefix="/v1/batches", tags=["batches"])


def _out(session: Session, batch: Batch) -> BatchOut:
    return BatchOut.of(batch, request_counts(session, batch))


@router.post("", response_model=BatchOut)
def create_batch(
    body: BatchCreate, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """Validate an uploaded JSONL file of job requests and run them; bad lines fail it whole."""
    batch = service.create_batch(
        session,
        resources.store,
        resources.dispatcher,
        resources.settings,
        principal.tenant_id,
        body.request(),
    )
    return _out(session, batch)


@router.get("", response_model=BatchList)
def list_batches(principal: PrincipalDep, session: SessionDep, cursor: CursorDep) -> BatchList:
    """The caller's batches, newest first; `after=<last_id>` for the next page."""
    rows = service.list_batches(session, principal.tenant_id, cursor)
    return BatchList.of(rows, lambda batch: _out(session, batch))


@router.get("/{batch_id}", response_model=BatchOut)
def get_batch(batch_id: str, principal: PrincipalDep, session: SessionDep) -> BatchOut:
    """A batch with its status, request counts and result files."""
    return _out(session, service.get_batch(session, principal.tenant_id, batch_id))


@router.post("/{batch_id}/cancel", response_model=BatchOut)
def cancel_batch(
    batch_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """Cancel the requests that have not finished; finished ones stay in the output."""
    batch = service.cancel_batch(session, resources.dispatcher, principal.tenant_id, batch_id)
    return _out(session, batch)


@router.post("/{batch_id}/retry", response_model=BatchOut)
def retry_batch(
    batch_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> BatchOut:
    """A new batch over this finished batch's failed and expired requests."""
    old = service.get_batch(session, principal.tenant_id, batch_id)
    batch = service.retry_batch(
        session, resources.store, resources.dispatcher, resources.settings, old
    )
    return _out(session, batch)
