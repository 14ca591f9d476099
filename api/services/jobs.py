"""Jobs: read, list with a cursor, cancel, results (creation is `core.jobs.create_job`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Job
from core.errors import Conflict, NotFound
from core.queue import Dispatcher
from core.state import cancel_job, job_usage
from core.usage import sum_usage
from core.webhooks import emit_job_event


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """The tenant's job `job_id`; another tenant's id is NotFound like an unknown one."""
    job = session.scalar(select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id))
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def live_usage(session: Session, job: Job) -> dict[str, Any] | None:
    """Usage so far of a job still running (a finished job keeps its own)."""
    if job.usage is not None or job.chunks_done == 0:
        return None
    return sum_usage(job_usage(session, job.id))


def list_jobs(
    session: Session,
    tenant_id: str,
    *,
    status: str | None,
    kind: str | None,
    limit: int,
    after: str | None,
    batch_id: str | None = None,
) -> tuple[list[Job], bool]:
    """The tenant's jobs, newest first, `limit` at a time after the cursor `after`."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    if batch_id:
        query = query.where(Job.batch_id == batch_id)
    if after:
        query = query.where(Job.id < after)
    rows = list(session.scalars(query.order_by(Job.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def request_cancel(session: Session, dispatcher: Dispatcher, tenant_id: str, job_id: str) -> Job:
    """Cancel the job (firing its webhook); a job already finished otherwise is a Conflict."""
    job = get_job(session, tenant_id, job_id)
    if not cancel_job(session, job):
        raise Conflict(f"job {job_id} already {job.status}")
    emit_job_event(session, dispatcher, job)
    return job


def finished_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """The job, which must have succeeded to have a result (409 otherwise)."""
    job = get_job(session, tenant_id, job_id)
    if job.status != "succeeded" or job.result_key is None:
        raise Conflict(f"job {job_id} has no result: it is {job.status}")
    return job
