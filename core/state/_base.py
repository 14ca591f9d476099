"""What every part of the state machine shares: the claim record and the ready predicates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from core.db.models import Chunk, Job

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
HELD = (Job.status == "queued") & Job.enqueued_at.is_(None)


@dataclass(frozen=True)
class Claim:
    """A row claimed for work at `attempt`, valid until `lease_until`.

    `tries` counts the claims of this stage (of this chunk, or of this job stage), for the cap.
    """

    id: str
    attempt: int
    lease_until: datetime
    tries: int


def plan_ready(now: datetime) -> ColumnElement[bool]:
    """Jobs a planner may claim: queued, or planning with an expired lease."""
    return (Job.status == "queued") | (
        (Job.status == "running") & (Job.stage == "planning") & (Job.lease_until < now)
    )


def finalize_ready(now: datetime) -> ColumnElement[bool]:
    """Jobs a finalizer may claim: finalizing with no lease, or an expired one."""
    return (
        (Job.status == "running")
        & (Job.stage == "finalizing")
        & (Job.lease_until.is_(None) | (Job.lease_until < now))
    )


def chunk_ready(now: datetime) -> ColumnElement[bool]:
    """Chunks a model host may claim: pending, or running with an expired lease."""
    return (Chunk.status == "pending") | ((Chunk.status == "running") & (Chunk.lease_until < now))


def one_changed(result: Any) -> bool:
    """Whether a conditional UPDATE changed exactly one row (the claim or write went through)."""
    return bool(result.rowcount == 1)


def update_jobs(
    session: Session, job_ids: Collection[str], condition: ColumnElement[bool], **values: Any
) -> list[str]:
    """One conditional UPDATE of the jobs of `job_ids`; returns the ids it changed."""
    if not job_ids:
        return []
    statement = (
        update(Job)
        .where(Job.id.in_(list(job_ids)), condition)
        .values(**values)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))
