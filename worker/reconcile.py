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
from core.fairness import admit
from core.logging import get_logger
from worker.context import WorkerContext
from worker.schedules import fire_schedules
from worker.webhooks import redeliver

log = get_logger("worker.reconcile")
BATCH = 500


@dataclass
class ReconcileReport:
    """What one pass re-published, by step."""

    held: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    finalizes: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        moved = self.held + self.released + self.admitted + self.plans
        moved += self.chunks + self.finalizes + self.batches + self.webhooks + self.schedules
        return len(moved)


def _stale(column: InstrumentedAttribute[datetime | None], before: datetime) -> ColumnElement[bool]:
    return or_(column.is_(None), column < before)


def reconcile(ctx: WorkerContext, now: datetime | None = None) -> ReconcileReport:
    """One pass of the reconciler; returns what it re-published."""
    now = now or ctx.clock()
    before = now - timedelta(seconds=ctx.settings.reconcile_grace_seconds)
    report = ReconcileReport()
    closed = [name for name, window in ctx.settings.window_table.items() if not window.is_open(now)]
    with ctx.db.transaction() as session:
        report.held = _hold_closed(session, closed, now)
        released = _release_scheduled(session, closed, now)
        report.released = [job_id for job_id, bulk in released]
        # Released single jobs are sent now; released batch lines wait for `admit` below.
        report.plans = [job_id for job_id, bulk in released if not bulk] + list(
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
        running_job = select(Job.id).where(
            Job.id == Chunk.job_id,
            Job.status == "running",
            or_(Job.window.is_(None), Job.window.not_in(closed)),
        )
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
        report.admitted = admit(session, ctx.dispatcher, ctx.settings)
    # Open batches are looked at every pass: it is what expires them when their window ends.
    for batch_id in _open_batches(ctx):
        with ctx.db.transaction() as session:
            if (
                refresh_batch(session, ctx.store, batch_id, now, dispatcher=ctx.dispatcher)
                is not None
            ):
                report.batches.append(batch_id)
    # Webhook deliveries whose next attempt is due (retries are never Celery ETAs).
    report.webhooks = redeliver(ctx, now)
    # Recurring schedules: each due (schedule, slot) fires once however many beats run.
    report.schedules = fire_schedules(ctx, now)
    if report.total:
        log.info(
            "reconcile.republished",
            held=len(report.held),
            released=len(report.released),
            admitted=len(report.admitted),
            plans=len(report.plans),
            chunks=len(report.chunks),
            finalizes=len(report.finalizes),
            batches=len(report.batches),
            webhooks=len(report.webhooks),
            schedules=len(report.schedules),
        )
    return report


def _hold_closed(session: Session, closed: list[str], now: datetime) -> list[str]:
    """Queued jobs whose window has closed go back to `scheduled` (they had not started)."""
    if not closed:
        return []
    ids = list(
        session.scalars(
            select(Job.id).where(Job.status == "queued", Job.window.in_(closed)).limit(BATCH)
        )
    )
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status == "queued")
            .values(status="scheduled", enqueued_at=None, updated_at=now)
        )
    return ids


def _release_scheduled(
    session: Session, closed: list[str], now: datetime
) -> list[tuple[str, bool]]:
    """Scheduled jobs whose `not_before` has passed and whose window is open become queued.

    Returns (job id, is a batch line). Single jobs are marked sent (the caller publishes them);
    batch lines are left held for `admit`. A window the settings no longer define counts as
    open, so the job is released and its plan step fails it with the reason.
    """
    rows = session.execute(
        select(Job.id, Job.batch_id.is_not(None))
        .where(
            Job.status == "scheduled",
            or_(Job.not_before.is_(None), Job.not_before <= now),
            or_(Job.window.is_(None), Job.window.not_in(closed)),
        )
        .order_by(Job.priority.desc(), Job.id)
        .limit(BATCH)
    ).all()
    released = [(job_id, bool(bulk)) for job_id, bulk in rows]
    for bulk in (False, True):
        ids = [job_id for job_id, is_bulk in released if is_bulk == bulk]
        if ids:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.status == "scheduled")
                .values(status="queued", enqueued_at=None if bulk else now, updated_at=now)
            )
    return released


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
