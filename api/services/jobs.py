"""Jobs: validate and create (idempotently), read, list with a cursor, cancel, results."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.schemas import JobCreate
from api.services.files import get_file
from core.db import on_commit
from core.db.models import Job
from core.db.types import new_id, utcnow
from core.errors import Conflict, NotFound, Unprocessable, UnsupportedMedia
from core.kinds import KINDS
from core.queue import Dispatcher
from core.state import cancel_job, job_usage
from core.usage import sum_usage


def _request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _checked_params(body: JobCreate) -> dict[str, Any]:
    kind = KINDS.get(body.kind)
    if kind is None:
        raise Unprocessable(f"unknown job kind {body.kind!r}; known: {', '.join(sorted(KINDS))}")
    try:
        params = kind.params.model_validate(body.params)
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(["params", *(str(p) for p in e["loc"])]) + f": {e['msg']}"
            for e in exc.errors()
        )
        raise Unprocessable(problems) from None
    return params.model_dump(mode="json", exclude_none=True)


def create_job(
    session: Session,
    dispatcher: Dispatcher,
    tenant_id: str,
    body: JobCreate,
    idempotency_key: str | None,
    *,
    publish: bool = True,
) -> tuple[Job, bool]:
    """Insert a job and enqueue its planning after commit; returns (job, created).

    The same Idempotency-Key with the same body returns the job made the first time; with
    another body it is a Conflict. `publish=False` leaves the enqueueing to the caller (a batch
    publishes its jobs only once every line is valid).
    """
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        existing = session.scalar(
            select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key)
        )
        if existing is not None:
            if existing.request_hash != request_hash:
                raise Conflict("Idempotency-Key was already used with a different request body")
            return existing, False
    params = _checked_params(body)
    if body.input.url is not None:
        raise Unprocessable("url inputs are not accepted yet; upload the file to /v1/files")
    if body.webhook_url is not None:
        raise Unprocessable("webhook delivery is not available yet; poll GET /v1/jobs/{id}")
    assert body.input.file_id is not None
    file = get_file(session, tenant_id, body.input.file_id)
    if file.content_type not in KINDS[body.kind].content_types:
        raise UnsupportedMedia(f"{body.kind} cannot read {file.content_type} ({file.filename})")
    now = utcnow()
    scheduled = body.not_before is not None and body.not_before > now
    job = Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        kind=body.kind,
        status="scheduled" if scheduled else "queued",
        priority=body.priority,
        input_file_id=file.id,
        spec={"input": {"file_id": file.id}, "params": params},
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        not_before=body.not_before,
        attempt=0,
        chunks_total=0,
        chunks_done=0,
        enqueued_at=None if scheduled else now,
        updated_at=now,
    )
    try:
        # A savepoint: a concurrent request with the same Idempotency-Key may win the insert.
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        if idempotency_key is None:
            raise
        return create_job(session, dispatcher, tenant_id, body, idempotency_key, publish=publish)
    if publish and not scheduled:
        on_commit(session, lambda: dispatcher.plan(job.id, job.priority))
    return job, True


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


def request_cancel(session: Session, tenant_id: str, job_id: str) -> Job:
    """Cancel the job; a job already finished otherwise is a Conflict."""
    job = get_job(session, tenant_id, job_id)
    if not cancel_job(session, job):
        raise Conflict(f"job {job_id} already {job.status}")
    return job


def finished_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """The job, which must have succeeded to have a result (409 otherwise)."""
    job = get_job(session, tenant_id, job_id)
    if job.status != "succeeded" or job.result_key is None:
        raise Conflict(f"job {job_id} has no result: it is {job.status}")
    return job
