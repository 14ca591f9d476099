"""The job and chunk state machine as conditional UPDATEs: claims, stale-write refusal, fan-in.

    job:    scheduled -> queued -> running(planning -> inferring -> finalizing)
                                   -> succeeded | failed | cancelled | expired
    chunk:  pending -> running -> done | failed | cancelled

Every claim bumps `attempt` and sets `lease_until`; every write after a claim names the attempt
and changes nothing when the attempt is stale (another worker took over after the lease expired).
The chunk that completes a job's set flips it to `finalizing` under a row lock on the job, so
exactly one caller learns that finalize must be enqueued (fan-in through SQL, no chords).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.models import Chunk, Job
from core.db.types import new_id, utcnow

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})


@dataclass(frozen=True)
class Claim:
    """A row claimed for work at `attempt`, valid until `lease_until`.

    `tries` counts the claims of this stage (of this chunk, or of this job stage), for the cap.
    """

    id: str
    attempt: int
    lease_until: datetime
    tries: int


def _lease(seconds: float) -> tuple[datetime, datetime]:
    now = utcnow()
    return now, now + timedelta(seconds=seconds)


def claim_job(session: Session, job_id: str, stage: str, lease_seconds: float) -> Claim | None:
    """Claim a job for `stage` ('planning' or 'finalizing'); None when someone else holds it."""
    now, until = _lease(lease_seconds)
    if stage == "planning":
        ready = (Job.status == "queued") | (
            (Job.status == "running") & (Job.stage == "planning") & (Job.lease_until < now)
        )
    else:
        ready = (
            (Job.status == "running")
            & (Job.stage == "finalizing")
            & ((Job.lease_until.is_(None)) | (Job.lease_until < now))
        )
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
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.execute(select(Job.attempt, Job.stage_attempts).where(Job.id == job_id)).one()
    return Claim(job_id, row.attempt, until, row.stage_attempts)


def save_plan(session: Session, claim: Claim, specs: list[dict[str, Any]]) -> list[str] | None:
    """Write the chunks of a planned job and move it to `inferring`; None if the claim is stale."""
    job = session.scalar(
        select(Job).where(Job.id == claim.id, Job.attempt == claim.attempt).with_for_update()
    )
    if job is None or job.status != "running" or job.stage != "planning":
        return None
    ids = _insert_chunks(session, job, specs, 0)
    job.stage = "inferring"
    job.stage_attempts = 0
    job.lease_until = None
    job.chunks_total = len(specs)
    job.chunks_done = 0
    job.updated_at = utcnow()
    session.flush()
    return ids


def add_chunks(session: Session, claim: Claim, specs: list[dict[str, Any]]) -> list[str] | None:
    """Append another round of chunks to a finalizing job and move it back to `inferring`.

    None if the claim is stale. Chunk indexes continue after the existing ones.
    """
    job = session.scalar(
        select(Job).where(Job.id == claim.id, Job.attempt == claim.attempt).with_for_update()
    )
    if job is None or job.status != "running" or job.stage != "finalizing":
        return None
    start = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.job_id == job.id))
    ids = _insert_chunks(session, job, specs, start or 0)
    job.stage = "inferring"
    job.stage_attempts = 0
    job.lease_until = None
    job.chunks_total += len(specs)
    job.updated_at = utcnow()
    session.flush()
    return ids


def _insert_chunks(
    session: Session, job: Job, specs: list[dict[str, Any]], start: int
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
            enqueued_at=utcnow(),
        )
        session.add(chunk)
        ids.append(chunk.id)
    return ids


def claim_chunk(session: Session, chunk_id: str, lease_seconds: float) -> Claim | None:
    """Claim a pending chunk, or one whose lease expired, of a running job."""
    now, until = _lease(lease_seconds)
    running_job = select(Job.id).where(Job.id == Chunk.job_id, Job.status == "running")
    ready = (Chunk.status == "pending") | ((Chunk.status == "running") & (Chunk.lease_until < now))
    result = session.execute(
        update(Chunk)
        .where(Chunk.id == chunk_id, ready, running_job.exists())
        .values(
            status="running",
            attempt=Chunk.attempt + 1,
            lease_until=until,
            started_at=func.coalesce(Chunk.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempt = session.scalar(select(Chunk.attempt).where(Chunk.id == chunk_id))
    assert attempt is not None
    return Claim(chunk_id, attempt, until, attempt)


def complete_chunk(
    session: Session, claim: Claim, output: dict[str, Any], usage: dict[str, Any] | None
) -> str | None:
    """Store a chunk's output; returns the job id when this chunk completed the job's set.

    Returns None both when other chunks remain and when the claim is stale (nothing written).
    """
    job_id = session.scalar(select(Chunk.job_id).where(Chunk.id == claim.id))
    if job_id is None:
        return None
    # Lock the job row first: concurrent completions serialise here, so the count below sees them.
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    assert job is not None
    if job.status != "running":
        session.execute(
            update(Chunk)
            .where(Chunk.id == claim.id, Chunk.attempt == claim.attempt, Chunk.status == "running")
            .values(status="cancelled", lease_until=None, finished_at=utcnow())
        )
        return None
    result = session.execute(
        update(Chunk)
        .where(Chunk.id == claim.id, Chunk.attempt == claim.attempt, Chunk.status == "running")
        .values(status="done", output=output, usage=usage, lease_until=None, finished_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    done = session.scalar(
        select(func.count())
        .select_from(Chunk)
        .where(Chunk.job_id == job_id, Chunk.status == "done")
    )
    job.chunks_done = done or 0
    job.updated_at = utcnow()
    if job.stage == "inferring" and job.chunks_done >= job.chunks_total:
        job.stage = "finalizing"
        job.stage_attempts = 0
        job.lease_until = None
        job.enqueued_at = utcnow()
        session.flush()
        return job_id
    session.flush()
    return None


def hold_job(session: Session, job_id: str) -> bool:
    """Put a queued job that has not started back to `scheduled` (its window closed)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="scheduled", enqueued_at=None, updated_at=utcnow())
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_chunk(session: Session, claim: Claim, reason: str) -> bool:
    """Give a claimed chunk back after a retryable failure; False if the claim was stale."""
    result = session.execute(
        update(Chunk)
        .where(Chunk.id == claim.id, Chunk.attempt == claim.attempt, Chunk.status == "running")
        .values(status="pending", lease_until=None, enqueued_at=utcnow(), error_message=reason)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_job(session: Session, claim: Claim) -> bool:
    """Let a claimed plan or finalize be taken again at once (a retryable failure)."""
    result = session.execute(
        update(Job)
        .where(Job.id == claim.id, Job.attempt == claim.attempt, Job.status == "running")
        .values(lease_until=utcnow(), enqueued_at=utcnow())
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def fail_job(session: Session, job_id: str, code: str, message: str) -> bool:
    """Move a job that is not finished yet to `failed` with its reason; stops its chunks."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.not_in(TERMINAL))
        .values(
            status="failed",
            error_code=code,
            error_message=message[:2000],
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
    )
    stop_chunks(session, job_id)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def fail_chunk(session: Session, claim: Claim, code: str, message: str) -> str | None:
    """Record a chunk's permanent failure and fail its job; returns the job id if it changed."""
    job_id = session.scalar(select(Chunk.job_id).where(Chunk.id == claim.id))
    result = session.execute(
        update(Chunk)
        .where(Chunk.id == claim.id, Chunk.attempt == claim.attempt, Chunk.status == "running")
        .values(
            status="failed",
            error_code=code,
            error_message=message[:2000],
            lease_until=None,
            finished_at=utcnow(),
        )
    )
    if result.rowcount != 1 or job_id is None:  # type: ignore[attr-defined]
        return None
    return job_id if fail_job(session, job_id, code, message) else None


def succeed_job(
    session: Session,
    claim: Claim,
    result_key: str,
    artifacts: dict[str, Any],
    usage: dict[str, Any],
) -> bool:
    """Make a job's result visible and mark it `succeeded`, in one transaction; once."""
    now = utcnow()
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
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def cancel_job(session: Session, job: Job) -> bool:
    """Cancel a job that has not finished; chunks not yet started will not run."""
    if job.status in TERMINAL:
        return job.status == "cancelled"
    now = utcnow()
    job.status = "cancelled"
    job.lease_until = None
    job.finished_at = now
    job.updated_at = now
    session.flush()
    stop_chunks(session, job.id)
    return True


def stop_chunks(session: Session, job_id: str) -> None:
    """Cancel the chunks of `job_id` that have not started."""
    session.execute(
        update(Chunk)
        .where(Chunk.job_id == job_id, Chunk.status == "pending")
        .values(status="cancelled", finished_at=utcnow())
    )


def job_usage(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The usage records of a job's finished chunks, in chunk order."""
    rows = session.scalars(
        select(Chunk.usage)
        .where(Chunk.job_id == job_id, Chunk.status == "done")
        .order_by(Chunk.index)
    )
    return [u for u in rows if u]
