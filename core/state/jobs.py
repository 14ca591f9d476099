"""Job rows: stage claims, plans and rounds of chunks, and the ends of a job (succeeded, failed,
expired, cancelled), which stop its chunks that have not started."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.models import Chunk, File, Job
from core.db.types import new_id, utcnow
from core.state._base import (
    TERMINAL,
    Claim,
    finalize_ready,
    one_changed,
    plan_ready,
    update_jobs,
)


def claim_job(
    session: Session, job_id: str, stage: str, lease_seconds: float, now: datetime | None = None
) -> Claim | None:
    """Claim a job for `stage` ('planning' or 'finalizing'); None when someone else holds it."""
    now = now or utcnow()
    until = now + timedelta(seconds=lease_seconds)
    ready = plan_ready(now) if stage == "planning" else finalize_ready(now)
    values: dict[str, Any] = {
        "status": "running",
        "stage": stage,
        "attempt": Job.attempt + 1,
        "stage_attempts": Job.stage_attempts + 1,
        "lease_until": until,
        "updated_at": now,
        "started_at": func.coalesce(Job.started_at, now),
    }
    result = session.execute(update(Job).where(Job.id == job_id, ready).values(**values))
    if not one_changed(result):
        return None
    row = session.execute(select(Job.attempt, Job.stage_attempts).where(Job.id == job_id)).one()
    return Claim(job_id, row.attempt, until, row.stage_attempts)


def _locked_stage(session: Session, claim: Claim, stage: str) -> Job | None:
    job = session.scalar(
        select(Job).where(Job.id == claim.id, Job.attempt == claim.attempt).with_for_update()
    )
    if job is None or job.status != "running" or job.stage != stage:
        return None
    return job


def _to_inferring(job: Job, now: datetime) -> None:
    job.stage = "inferring"
    job.stage_attempts = 0
    job.lease_until = None
    job.updated_at = now


def save_plan(
    session: Session, claim: Claim, specs: list[dict[str, Any]], now: datetime | None = None
) -> list[str] | None:
    """Write the chunks of a planned job and move it to `inferring`; None if the claim is stale."""
    now = now or utcnow()
    job = _locked_stage(session, claim, "planning")
    if job is None:
        return None
    ids = _insert_chunks(session, job, specs, 0, now)
    _to_inferring(job, now)
    job.chunks_total = len(specs)
    job.chunks_done = 0
    session.flush()
    return ids


def add_chunks(
    session: Session, claim: Claim, specs: list[dict[str, Any]], now: datetime | None = None
) -> list[str] | None:
    """Append another round of chunks to a finalizing job and move it back to `inferring`.

    None if the claim is stale. Chunk indexes continue after the existing ones.
    """
    now = now or utcnow()
    job = _locked_stage(session, claim, "finalizing")
    if job is None:
        return None
    start = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.job_id == job.id))
    ids = _insert_chunks(session, job, specs, start or 0, now)
    _to_inferring(job, now)
    job.chunks_total += len(specs)
    session.flush()
    return ids


def _insert_chunks(
    session: Session, job: Job, specs: list[dict[str, Any]], start: int, now: datetime
) -> list[str]:
    ids = []
    for offset, spec in enumerate(specs):
        chunk = Chunk(
            id=new_id("chk"),
            job_id=job.id,
            tenant_id=job.tenant_id,
            index=start + offset,
            status="pending",
            spec=spec,
            attempt=0,
            enqueued_at=now,
        )
        session.add(chunk)
        ids.append(chunk.id)
    return ids


def attach_input(session: Session, claim: Claim, file: File) -> bool:
    """Record the input file fetched for a job being planned and point the job at it; False
    (nothing recorded) when the claim went stale or the job has its input already."""
    job = session.scalar(
        select(Job)
        .where(Job.id == claim.id, Job.attempt == claim.attempt, Job.input_file_id.is_(None))
        .with_for_update()
    )
    if job is None:
        return False
    session.add(file)
    session.flush()
    job.input_file_id = file.id
    return True


def release_job(session: Session, claim: Claim, now: datetime | None = None) -> bool:
    """Let a claimed plan or finalize be taken again at once (a retryable failure)."""
    now = now or utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == claim.id, Job.attempt == claim.attempt, Job.status == "running")
        .values(lease_until=now, enqueued_at=now)
    )
    return one_changed(result)


def fail_job(
    session: Session, job_id: str, code: str, message: str, now: datetime | None = None
) -> bool:
    """Move a job that is not finished yet to `failed` with its reason; stops its chunks."""
    return bool(end_jobs(session, [job_id], "failed", code, message, now))


def end_jobs(
    session: Session,
    job_ids: Collection[str],
    status: str,
    code: str,
    message: str,
    now: datetime | None = None,
) -> list[str]:
    """Move the jobs of `job_ids` not finished yet to `status` ('failed' or 'expired') with a
    reason, and stop their chunks that have not started; returns the ids that changed."""
    assert status in TERMINAL
    now = now or utcnow()
    ids = update_jobs(
        session,
        job_ids,
        Job.status.not_in(TERMINAL),
        status=status,
        error_code=code,
        error_message=message[:2000],
        lease_until=None,
        finished_at=now,
        updated_at=now,
    )
    stop_chunks(session, ids, now)
    return ids


def succeed_job(
    session: Session,
    claim: Claim,
    result_key: str,
    artifacts: dict[str, Any],
    usage: dict[str, Any],
    now: datetime | None = None,
) -> bool:
    """Make a job's result visible and mark it `succeeded`, in one transaction; once."""
    now = now or utcnow()
    result = session.execute(
        update(Job)
        .where(
            Job.id == claim.id,
            Job.attempt == claim.attempt,
            Job.status == "running",
            Job.stage == "finalizing",
        )
        .values(
            status="succeeded",
            stage=None,
            result_key=result_key,
            artifacts=artifacts,
            usage=usage,
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
    )
    return one_changed(result)


def cancel_job(session: Session, job: Job, now: datetime | None = None) -> bool:
    """Cancel a job that has not finished; chunks not yet started will not run."""
    if job.status in TERMINAL:
        return job.status == "cancelled"
    now = now or utcnow()
    job.status = "cancelled"
    job.lease_until = None
    job.finished_at = now
    job.updated_at = now
    session.flush()
    stop_chunks(session, [job.id], now)
    return True


def stop_chunks(session: Session, job_ids: Collection[str], now: datetime | None = None) -> None:
    """Cancel the chunks of the jobs of `job_ids` that have not started."""
    if not job_ids:
        return
    session.execute(
        update(Chunk)
        .where(Chunk.job_id.in_(list(job_ids)), Chunk.status == "pending")
        .values(status="cancelled", finished_at=now or utcnow())
    )
