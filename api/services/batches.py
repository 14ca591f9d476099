"""Batches of a tenant: create, read, list, cancel, retry (intake is `core.batch_intake`)."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.pagination import Cursor, Rows, page
from core.batch_intake import create_batch, retry_batch
from core.batches import OPEN
from core.db import on_commit
from core.db.models import Batch, Job
from core.db.types import utcnow
from core.errors import Conflict
from core.queue import Dispatcher
from core.state import TERMINAL, cancel_job
from core.tenancy import owned
from core.webhooks import emit_job_event

# Intake stays in core, since schedule firings create batches too.
__all__ = ["cancel_batch", "create_batch", "get_batch", "list_batches", "retry_batch"]


def get_batch(session: Session, tenant_id: str, batch_id: str) -> Batch:
    """The tenant's batch; another tenant's id is NotFound."""
    return owned(session, Batch, tenant_id, batch_id, "batch")


def list_batches(session: Session, tenant_id: str, cursor: Cursor) -> Rows[Batch]:
    """The tenant's batches, newest first."""
    return page(session, select(Batch).where(Batch.tenant_id == tenant_id), Batch.id, cursor)


def cancel_batch(session: Session, dispatcher: Dispatcher, tenant_id: str, batch_id: str) -> Batch:
    """Stop a running batch: its unfinished jobs are cancelled, finished ones are kept."""
    batch = get_batch(session, tenant_id, batch_id)
    if batch.status == "cancelling" or batch.status == "cancelled":
        return batch
    if batch.status not in OPEN:
        raise Conflict(f"batch {batch_id} is already {batch.status}")
    batch.status, batch.cancelling_at = "cancelling", utcnow()
    for job in session.scalars(select(Job).where(Job.batch_id == batch.id)):
        if job.status not in TERMINAL and cancel_job(session, job):
            emit_job_event(session, dispatcher, job)  # lines with their own webhook_url
    session.flush()
    on_commit(session, partial(dispatcher.batch, batch.id))
    return batch
