"""The reconciler (run by beat): the row is the truth, the queue a hint, so lost work is re-sent.

It re-publishes what a row says should be moving but has not been touched for a grace period:
queued jobs whose plan message was lost, expired leases (a worker died mid-stage), pending chunks
whose message was lost, and jobs waiting for finalize. It also releases `scheduled` jobs whose
`not_before` has passed, and finishes or expires open batches. Duplicate messages are harmless:
every stage starts with a claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.batches import OPEN, refresh_batch
from core.db import on_commit
from core.db.models import Batch, Chunk, Job
from core.db.types import utcnow
from core.logging import get_logger
from worker.context import WorkerContext

log = get_logger("worker.reconcile")
BATCH = 500


@dataclass
class ReconcileReport:
    """What one pass re-published, by step."""

    released: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    finalizes: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        moved = self.released + self.plans + self.chunks + self.finalizes + self.batches
        return len(moved)


def _stale(column: InstrumentedAttribute[datetime | None], before: datetime) -> ColumnElement[bool]:
    return or_(column.is_(None), column < before)


def reconcile(ctx: WorkerContext, now: datetime | None = None) -> ReconcileReport:
    """One pass of the reconciler; returns what it re-published."""
    now = now or utcnow()
    before = now - timedelta(seconds=ctx.settings.reconcile_grace_seconds)
    report = ReconcileReport()
    with ctx.db.transaction() as session:
        report.released = list(
            session.scalars(
                select(Job.id).where(Job.status == "scheduled", Job.not_before <= now).limit(BATCH)
            )
        )
        if report.released:
            session.execute(
                update(Job)
                .where(Job.id.in_(report.released), Job.status == "scheduled")
                .values(status="queued", updated_at=now)
            )
        report.plans = report.released + list(
            session.scalars(
                select(Job.id)
                .where(
                    or_(
                        Job.status == "queued",
                        (Job.status == "running")
                        & (Job.stage == "planning")
                        & (Job.lease_until < now),
                    ),
                    Job.enqueued_at < before,
                )
                .order_by(Job.priority.desc(), Job.id)
                .limit(BATCH)
            )
        )
        running_job = select(Job.id).where(Job.id == Chunk.job_id, Job.status == "running")
        report.chunks = list(
            session.scalars(
                select(Chunk.id)
                .where(
                    or_(
                        Chunk.status == "pending",
                        (Chunk.status == "running") & (Chunk.lease_until < now),
                    ),
                    _stale(Chunk.enqueued_at, before),
                    running_job.exists(),
                )
                .order_by(Chunk.id)
                .limit(BATCH)
            )
        )
        report.finalizes = list(
            session.scalars(
                select(Job.id)
                .where(
                    Job.status == "running",
                    Job.stage == "finalizing",
                    _stale(Job.lease_until, now),
                    _stale(Job.enqueued_at, before),
                )
                .limit(BATCH)
            )
        )
        report.finalizes += _complete_but_not_finalizing(session, now)
        job_ids = report.plans + report.finalizes
        if job_ids:
            session.execute(update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=now))
        if report.chunks:
            session.execute(
                update(Chunk).where(Chunk.id.in_(report.chunks)).values(enqueued_at=now)
            )
        priority: dict[str, int] = {
            row.id: row.priority
            for row in session.execute(select(Job.id, Job.priority).where(Job.id.in_(job_ids)))
        }
        chunk_priority: dict[str, int] = {
            row.id: row.priority
            for row in session.execute(
                select(Chunk.id, Job.priority)
                .join(Job, Job.id == Chunk.job_id)
                .where(Chunk.id.in_(report.chunks))
            )
        }
        for job_id in report.plans:
            on_commit(session, partial(ctx.dispatcher.plan, job_id, priority[job_id]))
        for chunk_id in report.chunks:
            on_commit(session, partial(ctx.dispatcher.infer, chunk_id, chunk_priority[chunk_id]))
        for job_id in report.finalizes:
            on_commit(session, partial(ctx.dispatcher.finalize, job_id, priority[job_id]))
    # Open batches are looked at every pass: it is what expires them when their window ends.
    for batch_id in _open_batches(ctx):
        with ctx.db.transaction() as session:
            if refresh_batch(session, ctx.store, batch_id, now) is not None:
                report.batches.append(batch_id)
    if report.total:
        log.info(
            "reconcile.republished",
            released=len(report.released),
            plans=len(report.plans),
            chunks=len(report.chunks),
            finalizes=len(report.finalizes),
            batches=len(report.batches),
        )
    return report


def _open_batches(ctx: WorkerContext) -> list[str]:
    with ctx.db.transaction() as session:
        query = select(Batch.id).where(Batch.status.in_(OPEN)).limit(BATCH)
        return list(session.scalars(query))


def _complete_but_not_finalizing(session: Session, now: datetime) -> list[str]:
    """Jobs whose chunks are all done but that never moved to finalizing (belt and braces)."""
    done = (
        select(func.count())
        .select_from(Chunk)
        .where(Chunk.job_id == Job.id, Chunk.status == "done")
        .scalar_subquery()
    )
    ids = list(
        session.scalars(
            select(Job.id)
            .where(
                Job.status == "running",
                Job.stage == "inferring",
                Job.chunks_total > 0,
                done >= Job.chunks_total,
            )
            .limit(BATCH)
        )
    )
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.stage == "inferring")
            .values(stage="finalizing", stage_attempts=0, lease_until=None, updated_at=now)
        )
    return ids
