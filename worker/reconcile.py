"""The reconciler (run by beat): the row is the truth, the queue a hint, so lost work is re-sent.

One pass runs one small step per concern, in this order:

1. hold: queued jobs whose window has closed go back to `scheduled`;
2. release: scheduled jobs whose time has come become queued (single jobs are sent, batch lines
   wait for admission);
3. plans, chunks, finalizes: re-publish what a row says should be moving but whose message is
   older than the grace period (a lost message, or an expired lease: a worker died mid-stage);
4. admit: hand held batch jobs to the broker, fairly (`core/fairness.py`);
5. batches: finish or expire open batches; 6. webhooks: re-send due deliveries;
7. schedules: fire due slots.

Steps 1-4 share one transaction; messages go out after its commit. Duplicate messages are
harmless: every stage starts with a claim. Every write of a job or chunk row is a function of
`core/state/`; "may this start now" is `core.windows.StartGate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.batches import OPEN
from core.db import on_commit
from core.db.models import Batch, Chunk, Job
from core.fairness import admit
from core.logging import get_logger
from core.state import (
    chunk_ready,
    finalize_complete,
    finalize_ready,
    hold_jobs,
    mark_chunks_sent,
    mark_jobs_sent,
    plan_ready,
    release_scheduled,
)
from core.windows import StartGate
from worker.batches import refresh_batch
from worker.context import WorkerContext
from worker.schedule_firing import fire_schedules
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

    def counts(self) -> dict[str, int]:
        """How many ids each step moved."""
        return {name: len(ids) for name, ids in vars(self).items()}

    @property
    def total(self) -> int:
        return sum(self.counts().values())


@dataclass(frozen=True)
class _Pass:
    """What every step of one pass needs: the context, the clock reading and the grace cut-off."""

    ctx: WorkerContext
    now: datetime
    gate: StartGate

    @property
    def before(self) -> datetime:
        return self.now - timedelta(seconds=self.ctx.settings.reconcile_grace_seconds)


def reconcile(ctx: WorkerContext, now: datetime | None = None) -> ReconcileReport:
    """One pass of the reconciler; returns what it moved and re-published."""
    now = now or ctx.clock()
    step = _Pass(ctx, now, StartGate.at(ctx.settings.window_table, now))
    report = ReconcileReport()
    with ctx.db.transaction() as session:
        report.held = _hold_closed(session, step)
        released = _release_due(session, step)
        report.released = released
        report.plans = _resend_plans(session, step, released)
        report.chunks = _resend_chunks(session, step)
        report.finalizes = _resend_finalizes(session, step)
        report.admitted = admit(session, ctx.dispatcher, ctx.settings, now)
    report.batches = _refresh_open_batches(step)
    report.webhooks = redeliver(ctx, now)
    report.schedules = fire_schedules(ctx, now)
    if report.total:
        log.info("reconcile.republished", **report.counts())
    return report


def _stale(column: InstrumentedAttribute[datetime | None], before: datetime) -> ColumnElement[bool]:
    return or_(column.is_(None), column < before)


def _hold_closed(session: Session, step: _Pass) -> list[str]:
    """Queued jobs whose window has closed go back to `scheduled` (they had not started)."""
    if not step.gate.closed:
        return []
    query = select(Job.id).where(Job.status == "queued", ~step.gate.allows_window())
    return hold_jobs(session, list(session.scalars(query.limit(BATCH))), step.now)


def _release_due(session: Session, step: _Pass) -> list[str]:
    """Scheduled jobs that may start now become queued; returns them, single jobs first.

    Single jobs are marked sent (`_resend_plans` publishes them); batch lines are left held for
    `admit`. A window the settings no longer define counts as open, so the job is released and
    its plan step fails it with the reason.
    """
    rows = session.execute(
        select(Job.id, Job.batch_id.is_not(None))
        .where(Job.status == "scheduled", step.gate.allows_job())
        .order_by(Job.priority.desc(), Job.id)
        .limit(BATCH)
    ).all()
    singles = release_scheduled(
        session, [i for i, bulk in rows if not bulk], held=False, now=step.now
    )
    lines = release_scheduled(session, [i for i, bulk in rows if bulk], held=True, now=step.now)
    return singles + lines


def _resend_plans(session: Session, step: _Pass, released: list[str]) -> list[str]:
    """Plan messages for released single jobs, and for queued or planning jobs gone quiet."""
    quiet = select(Job.id, Job.priority).where(plan_ready(step.now), Job.enqueued_at < step.before)
    fresh = select(Job.id, Job.priority).where(Job.id.in_(released), Job.batch_id.is_(None))
    rows = [*session.execute(_by_priority(fresh)), *session.execute(_by_priority(quiet))]
    return _send_jobs(session, step, rows, step.ctx.dispatcher.plan)


def _resend_finalizes(session: Session, step: _Pass) -> list[str]:
    """Finalize messages for finalizing jobs gone quiet, and for complete jobs never moved."""
    quiet = select(Job.id, Job.priority).where(
        finalize_ready(step.now), _stale(Job.enqueued_at, step.before)
    )
    rows = list(session.execute(quiet.limit(BATCH)))
    moved = set(finalize_complete(session, _complete_but_inferring(session), step.now))
    rows += session.execute(select(Job.id, Job.priority).where(Job.id.in_(moved)))
    return _send_jobs(session, step, rows, step.ctx.dispatcher.finalize)


def _resend_chunks(session: Session, step: _Pass) -> list[str]:
    """Infer messages for ready chunks gone quiet, of running jobs whose window is open."""
    rows = list(
        session.execute(
            select(Chunk.id, Job.priority)
            .join(Job, Job.id == Chunk.job_id)
            .where(
                chunk_ready(step.now),
                _stale(Chunk.enqueued_at, step.before),
                Job.status == "running",
                step.gate.allows_window(),
            )
            .order_by(Chunk.id)
            .limit(BATCH)
        )
    )
    mark_chunks_sent(session, [chunk_id for chunk_id, _ in rows], step.now)
    for chunk_id, priority in rows:
        on_commit(session, partial(step.ctx.dispatcher.infer, chunk_id, priority))
    return [chunk_id for chunk_id, _ in rows]


def _by_priority(query: Select[str, int]) -> Select[str, int]:
    return query.order_by(Job.priority.desc(), Job.id).limit(BATCH)


def _send_jobs(
    session: Session,
    step: _Pass,
    rows: Sequence[tuple[str, int]],
    send: Callable[[str, int], None],
) -> list[str]:
    ids = [job_id for job_id, _ in rows]
    mark_jobs_sent(session, ids, step.now)
    for job_id, priority in rows:
        on_commit(session, partial(send, job_id, priority))
    return ids


def _complete_but_inferring(session: Session) -> list[str]:
    """Jobs whose chunks are all done but that never moved to finalizing (belt and braces)."""
    done = (
        select(func.count())
        .select_from(Chunk)
        .where(Chunk.job_id == Job.id, Chunk.status == "done")
        .scalar_subquery()
    )
    query = select(Job.id).where(
        Job.status == "running",
        Job.stage == "inferring",
        Job.chunks_total > 0,
        done >= Job.chunks_total,
    )
    return list(session.scalars(query.limit(BATCH)))


def _refresh_open_batches(step: _Pass) -> list[str]:
    """Finish or expire open batches; looked at every pass, since that is what expires them."""
    with step.ctx.db.transaction() as session:
        open_ids = list(
            session.scalars(select(Batch.id).where(Batch.status.in_(OPEN)).limit(BATCH))
        )
    changed = []
    for batch_id in open_ids:
        with step.ctx.db.transaction() as session:
            if refresh_batch(step.ctx, session, batch_id, step.now) is not None:
                changed.append(batch_id)
    return changed
