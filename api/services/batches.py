"""Batches: read, list, cancel (creation and retry are `core.batch_intake`)."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches import OPEN
from core.db import on_commit
from core.db.models import Batch, Job
from core.db.types import utcnow
from core.errors import Conflict, NotFound
from core.queue import Dispatcher
from core.state import TERMINAL, cancel_job
from core.webhooks import emit_job_event


def get_batch(session: Session, tenant_id: str, batch_id: str) -> Batch:
    """The tenant's batch; another tenant's id is NotFound."""
    batch = session.scalar(select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id))
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch


def list_batches(
    session: Session, tenant_id: str, limit: int, after: str | None
) -> tuple[list[Batch], bool]:
    """The tenant's batches, newest first, with a cursor."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if after:
        query = query.where(Batch.id < after)
    rows = list(session.scalars(query.order_by(Batch.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


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
