"""Jobs of a tenant: read, list, cancel, results (creation is `core.jobs.create_job`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.pagination import Rows, page
from api.schemas.jobs import JobQuery
from core.db.models import Job
from core.errors import Conflict, NotFound
from core.jobs import create_job
from core.queue import Dispatcher
from core.state import cancel_job, job_usage
from core.storage import ObjectStore
from core.tenancy import owned
from core.usage import sum_usage
from core.webhooks import emit_job_event

# Creation stays in core, since batch lines and schedule firings create jobs too.
__all__ = [
    "artifact_key",
    "create_job",
    "finished_job",
    "get_job",
    "list_jobs",
    "live_usage",
    "request_cancel",
    "result",
]


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """The tenant's job `job_id`; another tenant's id is NotFound like an unknown one."""
    return owned(session, Job, tenant_id, job_id, "job")


def live_usage(session: Session, job: Job) -> dict[str, Any] | None:
    """Usage so far of a job still running (a finished job keeps its own)."""
    if job.usage is not None or job.chunks_done == 0:
        return None
    return sum_usage(job_usage(session, job.id))


def list_jobs(session: Session, tenant_id: str, query: JobQuery) -> Rows[Job]:
    """The tenant's jobs, newest first, optionally only those of a status, kind or batch."""
    return page(session, select(Job).where(Job.tenant_id == tenant_id), Job.id, query)


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


def result(session: Session, store: ObjectStore, tenant_id: str, job_id: str) -> Any:
    """The result JSON of a succeeded job, its `artifacts` as links to their routes."""
    job = finished_job(session, tenant_id, job_id)
    assert job.result_key is not None
    body = json.loads(store.get_bytes(job.result_key))
    body["artifacts"] = {
        name: f"/v1/jobs/{job.id}/artifacts/{name}" for name in sorted(job.artifacts or {})
    }
    return body


def artifact_key(session: Session, tenant_id: str, job_id: str, name: str) -> str:
    """The storage key of a succeeded job's artifact `name` (NotFound if it has none so named)."""
    job = finished_job(session, tenant_id, job_id)
    key = (job.artifacts or {}).get(name)
    if key is None:
        raise NotFound(f"job {job_id} has no artifact {name!r}")
    return str(key)
