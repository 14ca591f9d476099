"""Chunk rows: claims one at a time or many at once, lease renewal, and a claimed chunk's end
(done, released for a retry, failed, or cancelled with its job)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.db.models import Chunk, Job
from core.db.types import utcnow
from core.state._base import Claim, chunk_ready, one_changed
from core.state.jobs import fail_job


def claim_chunk(
    session: Session, chunk_id: str, lease_seconds: float, now: datetime | None = None
) -> Claim | None:
    """Claim a pending chunk, or one whose lease expired, of a running job."""
    now = now or utcnow()
    until = now + timedelta(seconds=lease_seconds)
    running_job = select(Job.id).where(Job.id == Chunk.job_id, Job.status == "running")
    result = session.execute(
        update(Chunk)
        .where(Chunk.id == chunk_id, chunk_ready(now), running_job.exists())
        .values(
            status="running",
            attempt=Chunk.attempt + 1,
            lease_until=until,
            started_at=func.coalesce(Chunk.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    if not one_changed(result):
        return None
    attempt = session.scalar(select(Chunk.attempt).where(Chunk.id == chunk_id))
    assert attempt is not None
    return Claim(chunk_id, attempt, until, attempt)


def claim_chunks(
    session: Session,
    limit: int,
    lease_seconds: float,
    *,
    window_open: ColumnElement[bool] | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """Claim up to `limit` ready chunks of running jobs in one UPDATE, most urgent first.

    The order: the job's priority (higher first); then tenant turns, so that among equal
    priorities each tenant's n-th ready chunk (counting the chunks it has running) comes before
    any tenant's (n+1)-th; then age. On PostgreSQL the chosen rows are locked with SKIP LOCKED,
    so claimers at the same moment take disjoint sets without waiting (one may get fewer than
    `limit` and claim again later); on SQLite writers are serialized. Either way the UPDATE
    re-checks that each chunk is still ready. `window_open` (`StartGate.allows_window()`)
    leaves the chunks of jobs whose window is closed waiting.
    """
    now = now or utcnow()
    until = now + timedelta(seconds=lease_seconds)
    busy = aliased(Chunk)
    running = (
        select(func.count())
        .select_from(busy)
        .where(busy.tenant_id == Chunk.tenant_id, busy.status == "running", busy.lease_until >= now)
        .scalar_subquery()
    )
    # Age: jobs by id (time-ordered to the millisecond), a job's chunks by index.
    age = (Job.id, Chunk.index)
    turn = func.row_number().over(partition_by=(Chunk.tenant_id, Job.priority), order_by=age)
    ready = [chunk_ready(now), Job.status == "running"]
    if window_open is not None:
        ready.append(window_open)
    ranked = (
        select(
            Chunk.id,
            Job.priority,
            (turn + running).label("turn"),
            Job.id.label("job_id"),
            Chunk.index,
        )
        .join(Job, Job.id == Chunk.job_id)
        .where(*ready)
        .subquery()
    )
    chosen = (
        select(ranked.c.id)
        .order_by(ranked.c.priority.desc(), ranked.c.turn, ranked.c.job_id, ranked.c.index)
        .limit(limit)
    )
    locked = select(Chunk.id).where(Chunk.id.in_(chosen)).with_for_update(skip_locked=True)
    running_job = select(Job.id).where(Job.id == Chunk.job_id, Job.status == "running")
    statement = (
        update(Chunk)
        .where(Chunk.id.in_(locked.scalar_subquery()), chunk_ready(now), running_job.exists())
        .values(
            status="running",
            attempt=Chunk.attempt + 1,
            lease_until=until,
            started_at=func.coalesce(Chunk.started_at, now),
        )
        .returning(Chunk.id, Chunk.attempt)
        .execution_options(synchronize_session=False)
    )
    claims = [Claim(row.id, row.attempt, until, row.attempt) for row in session.execute(statement)]
    return sorted(claims, key=lambda claim: claim.id)


def renew_leases(
    session: Session, claims: Collection[Claim], lease_seconds: float, now: datetime | None = None
) -> list[Claim]:
    """Extend the leases of running chunks still held at their claim's attempt (a heartbeat);
    returns the claims renewed. A claim missing from the answer was lost: stop its work."""
    if not claims:
        return []
    now = now or utcnow()
    until = now + timedelta(seconds=lease_seconds)
    held = [(Chunk.id == c.id) & (Chunk.attempt == c.attempt) for c in claims]
    statement = (
        update(Chunk)
        .where(or_(*held), Chunk.status == "running")
        .values(lease_until=until)
        .returning(Chunk.id)
        .execution_options(synchronize_session=False)
    )
    renewed = set(session.scalars(statement))
    return [replace(c, lease_until=until) for c in claims if c.id in renewed]


def _of_claim(claim: Claim) -> ColumnElement[bool]:
    return (Chunk.id == claim.id) & (Chunk.attempt == claim.attempt) & (Chunk.status == "running")


def complete_chunk(
    session: Session,
    claim: Claim,
    output: dict[str, Any],
    usage: dict[str, Any] | None,
    now: datetime | None = None,
) -> str | None:
    """Store a chunk's output; returns the job id when this chunk completed the job's set.

    Returns None both when other chunks remain and when the claim is stale (nothing written).
    """
    now = now or utcnow()
    job_id = session.scalar(select(Chunk.job_id).where(Chunk.id == claim.id))
    if job_id is None:
        return None
    # Lock the job row first: concurrent completions serialise here, so the count below sees them.
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    assert job is not None
    if job.status != "running":
        session.execute(
            update(Chunk)
            .where(_of_claim(claim))
            .values(status="cancelled", lease_until=None, finished_at=now)
        )
        return None
    result = session.execute(
        update(Chunk)
        .where(_of_claim(claim))
        .values(status="done", output=output, usage=usage, lease_until=None, finished_at=now)
    )
    if not one_changed(result):
        return None
    done = session.scalar(
        select(func.count())
        .select_from(Chunk)
        .where(Chunk.job_id == job_id, Chunk.status == "done")
    )
    job.chunks_done = done or 0
    job.updated_at = now
    if job.stage == "inferring" and job.chunks_done >= job.chunks_total:
        job.stage = "finalizing"
        job.stage_attempts = 0
        job.lease_until = None
        job.enqueued_at = now
        session.flush()
        return job_id
    session.flush()
    return None


def release_chunk(session: Session, claim: Claim, reason: str, now: datetime | None = None) -> bool:
    """Give a claimed chunk back after a retryable failure; False if the claim was stale."""
    now = now or utcnow()
    result = session.execute(
        update(Chunk)
        .where(_of_claim(claim))
        .values(status="pending", lease_until=None, enqueued_at=now, error_message=reason)
    )
    return one_changed(result)


def fail_chunk(
    session: Session, claim: Claim, code: str, message: str, now: datetime | None = None
) -> str | None:
    """Record a chunk's permanent failure and fail its job; returns the job id if it changed."""
    now = now or utcnow()
    job_id = session.scalar(select(Chunk.job_id).where(Chunk.id == claim.id))
    result = session.execute(
        update(Chunk)
        .where(_of_claim(claim))
        .values(
            status="failed",
            error_code=code,
            error_message=message[:2000],
            lease_until=None,
            finished_at=now,
        )
    )
    if not one_changed(result) or job_id is None:
        return None
    return job_id if fail_job(session, job_id, code, message, now) else None


def job_usage(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The usage records of a job's finished chunks, in chunk order."""
    rows = session.scalars(
        select(Chunk.usage)
        .where(Chunk.job_id == job_id, Chunk.status == "done")
        .order_by(Chunk.index)
    )
    return [u for u in rows if u]
