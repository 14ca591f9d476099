"""Bulk transitions over sets of ids, for the reconciler and fair admission: hold and release
by window, admit held batch jobs, mark messages sent, repair a missed move to finalizing."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db.models import Chunk, Job
from core.db.types import utcnow
from core.state._base import HELD, one_changed, update_jobs


def hold_jobs(session: Session, job_ids: Collection[str], now: datetime | None = None) -> list[str]:
    """Put the queued jobs of `job_ids` that have not started back to `scheduled` (their window
    closed); returns the ids that changed."""
    return update_jobs(
        session,
        job_ids,
        Job.status == "queued",
        status="scheduled",
        enqueued_at=None,
        updated_at=now or utcnow(),
    )


def release_scheduled(
    session: Session, job_ids: Collection[str], *, held: bool, now: datetime | None = None
) -> list[str]:
    """Move the scheduled jobs of `job_ids` to `queued`: marked sent now (the caller publishes
    them), or, with `held`, left held for fair admission (batch lines)."""
    now = now or utcnow()
    return update_jobs(
        session,
        job_ids,
        Job.status == "scheduled",
        status="queued",
        enqueued_at=None if held else now,
        updated_at=now,
    )


def admit_held(session: Session, job_id: str, now: datetime | None = None) -> bool:
    """Give a held batch job its place in flight (marked sent at `now`); False if it was not held
    any more (admitted by another caller, or cancelled)."""
    now = now or utcnow()
    result = session.execute(
        update(Job).where(Job.id == job_id, HELD).values(enqueued_at=now, updated_at=now)
    )
    return one_changed(result)


def mark_jobs_sent(session: Session, job_ids: Collection[str], now: datetime | None = None) -> None:
    """Record that a plan or finalize message for each of `job_ids` was sent at `now`."""
    if job_ids:
        session.execute(
            update(Job).where(Job.id.in_(list(job_ids))).values(enqueued_at=now or utcnow())
        )


def mark_chunks_sent(
    session: Session, chunk_ids: Collection[str], now: datetime | None = None
) -> None:
    """Record that an infer message for each of `chunk_ids` was sent at `now`."""
    if chunk_ids:
        session.execute(
            update(Chunk).where(Chunk.id.in_(list(chunk_ids))).values(enqueued_at=now or utcnow())
        )


def finalize_complete(
    session: Session, job_ids: Collection[str], now: datetime | None = None
) -> list[str]:
    """Move inferring jobs of `job_ids` whose chunks are all done to `finalizing`; returns them.

    The last chunk's completion does this itself; this repairs a job that somehow missed it.
    """
    return update_jobs(
        session,
        job_ids,
        Job.stage == "inferring",
        stage="finalizing",
        stage_attempts=0,
        lease_until=None,
        updated_at=now or utcnow(),
    )
