"""The job and chunk state machine: every write of a `jobs` or `chunks` row is a function here.

    job:    scheduled -> queued -> running(planning -> inferring -> finalizing)
                                   -> succeeded | failed | cancelled | expired
              queued -> scheduled            (its window closed before it started: `hold_jobs`)
              running(inferring) -> running(finalizing)   (the last chunk, or `finalize_complete`)
              running(finalizing) -> running(inferring)   (another round: `add_chunks`)
    chunk:  pending -> running -> done | failed | cancelled
              running -> pending             (a retryable failure: `release_chunk`)

Every claim bumps `attempt` and sets `lease_until`; every write after a claim names the attempt
and changes nothing when the attempt is stale (another worker took over after the lease expired).
A model host claims one chunk (`claim_chunk`) or many in one statement (`claim_chunks`: by
priority, tenant turns and age, SKIP LOCKED on PostgreSQL), and renews the leases of those it is
running (`renew_leases`), so a long batch keeps them while a dead host's expire.
The chunk that completes a job's set flips it to `finalizing` under a row lock on the job, so
exactly one caller learns that finalize must be enqueued (fan-in through SQL, no chords).

`enqueued_at` says when a message for the row was last sent (the reconciler re-sends rows whose
message is older than its grace period); a queued batch job with no `enqueued_at` is *held* for
fair admission (`core/fairness.py`). Bulk writes take sets of ids and return the ids they changed.
Every function takes `now` (default: the clock), so tests move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.db.models import Chunk, File, Job
from core.db.types import new_id, utcnow

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


def _updated(result: Any) -> bool:
    return bool(result.rowcount == 1)


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
    if not _updated(result):
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
    if not _updated(result):
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
    if not _updated(result):
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
    return _updated(result)


def release_job(session: Session, claim: Claim, now: datetime | None = None) -> bool:
    """Let a claimed plan or finalize be taken again at once (a retryable failure)."""
    now = now or utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == claim.id, Job.attempt == claim.attempt, Job.status == "running")
        .values(lease_until=now, enqueued_at=now)
    )
    return _updated(result)


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
    ids = _update_jobs(
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


def _update_jobs(
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
    if not _updated(result) or job_id is None:
        return None
    return job_id if fail_job(session, job_id, code, message, now) else None


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
    return _updated(result)


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


def hold_jobs(session: Session, job_ids: Collection[str], now: datetime | None = None) -> list[str]:
    """Put the queued jobs of `job_ids` that have not started back to `scheduled` (their window
    closed); returns the ids that changed."""
    return _update_jobs(
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
    return _update_jobs(
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
    return _updated(result)


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
    return _update_jobs(
        session,
        job_ids,
        Job.stage == "inferring",
        stage="finalizing",
        stage_attempts=0,
        lease_until=None,
        updated_at=now or utcnow(),
    )


def job_usage(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The usage records of a job's finished chunks, in chunk order."""
    rows = session.scalars(
        select(Chunk.usage)
        .where(Chunk.job_id == job_id, Chunk.status == "done")
        .order_by(Chunk.index)
    )
    return [u for u in rows if u]
