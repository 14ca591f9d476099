"""The stage runner: claim, run a kind's plain function outside any transaction, record the outcome.

Each stage is three short transactions: claim (with lease and attempt), work (none: model calls
and storage I/O never hold a transaction), and record (refused if the claim went stale). Errors
that will fail again (bad input) fail the job with their code; others give the claim back and
ask again, until the attempts cap fails the job with the last reason.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import on_commit
from core.db.models import Chunk, File, Job
from core.errors import NightowlError
from core.faults import crash_after_commit, crash_point
from core.logging import bound_context, get_logger
from core.state import (
    Claim,
    add_chunks,
    claim_chunk,
    claim_job,
    complete_chunk,
    fail_chunk,
    fail_job,
    hold_jobs,
    release_chunk,
    release_job,
    save_plan,
    succeed_job,
)
from core.storage import job_key
from core.usage import sum_usage
from core.webhooks import emit_job_event
from core.windows import StartGate
from worker.context import WorkerContext
from worker.fetch import fetch_url_input
from worker.kinds import PIPELINES, ChunkResult, JobInfo, MoreChunks
from worker.kinds.notice import tiny_warning

log = get_logger("worker")


def _job_info(job: Job, file: File | None) -> JobInfo:
    return JobInfo(
        id=job.id,
        tenant_id=job.tenant_id,
        kind=job.kind,
        params=dict(job.spec.get("params", {})),
        input_key=file.storage_key if file else None,
        content_type=file.content_type if file else None,
        filename=file.filename if file else None,
        priority=job.priority,
    )


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, NightowlError) else f"{type(exc).__name__}: {exc}"


def _is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, NightowlError) and not exc.retryable


def _claim_stage(ctx: WorkerContext, job_id: str, stage: str) -> tuple[Claim, JobInfo] | None:
    with ctx.db.transaction() as session:
        claim = claim_job(session, job_id, stage, ctx.settings.lease_seconds)
        if claim is None:
            log.info("job.claim.skipped", job_id=job_id, stage=stage)
            return None
        if claim.tries > ctx.settings.max_attempts:
            fail_job(
                session, job_id, "attempts_exhausted", f"{stage} failed {claim.tries - 1} times"
            )
            _job_ended(ctx, session, job_id)
            return None
        job = session.get_one(Job, job_id)
        file = session.get(File, job.input_file_id) if job.input_file_id else None
        return claim, _job_info(job, file)


def _record_job_failure(
    ctx: WorkerContext, claim: Claim, stage: str, exc: BaseException, priority: int
) -> None:
    with ctx.db.transaction() as session:
        if _is_permanent(exc):
            assert isinstance(exc, NightowlError)
            fail_job(session, claim.id, exc.code, exc.message)
            _job_ended(ctx, session, claim.id)
            log.info("job.failed", code=exc.code, message=exc.message)
        elif claim.tries >= ctx.settings.max_attempts:
            fail_job(session, claim.id, "attempts_exhausted", f"{stage}: {_describe(exc)}")
            _job_ended(ctx, session, claim.id)
            log.warning("job.failed", code="attempts_exhausted", error=_describe(exc))
        elif release_job(session, claim):
            retry = ctx.dispatcher.plan if stage == "planning" else ctx.dispatcher.finalize
            on_commit(session, lambda: retry(claim.id, priority))
            log.warning("job.stage.retry", stage=stage, error=_describe(exc))


def _may_start(ctx: WorkerContext, session: Session, job_id: str) -> bool:
    """Whether the job's work may start now, by its window (`StartGate`)."""
    name = session.scalar(select(Job.window).where(Job.id == job_id))
    return StartGate.at(ctx.settings.window_table, ctx.clock()).allows(name)


def _waits_for_window(ctx: WorkerContext, job_id: str) -> bool:
    """True when the job's window is closed: the job goes back to `scheduled` until it opens.

    A window that is no longer configured fails the job with a clear reason.
    """
    now = ctx.clock()
    with ctx.db.transaction() as session:
        name = session.scalar(select(Job.window).where(Job.id == job_id))
        gate = StartGate.at(ctx.settings.window_table, now)
        if gate.unknown(name):
            if fail_job(session, job_id, "invalid_input", f"window {name!r} is not configured"):
                _job_ended(ctx, session, job_id)
            return True
        if gate.allows(name):
            return False
        if hold_jobs(session, [job_id], now):
            log.info("job.window.closed", window=name)
        return True


def plan_job(ctx: WorkerContext, job_id: str) -> None:
    """Plan a queued job into chunks and enqueue them (unless its window has closed)."""
    with bound_context(job_id=job_id, stage="planning"):
        if _waits_for_window(ctx, job_id):
            return
        claimed = _claim_stage(ctx, job_id, "planning")
        if claimed is None:
            return
        claim, job = claimed
        try:
            job = fetch_url_input(ctx, claim, job)  # a `url` input becomes a file first
            specs = PIPELINES[job.kind].plan(ctx, job)
        except Exception as exc:
            _record_job_failure(ctx, claim, "planning", exc, job.priority)
            return
        with ctx.db.transaction() as session:
            ids = save_plan(session, claim, specs)
            if ids is None:
                log.info("job.plan.stale", attempt=claim.attempt)
                return
            crash_after_commit(session, ctx.settings, "plan.after_commit")
            for chunk_id in ids:
                on_commit(session, partial(ctx.dispatcher.infer, chunk_id, job.priority))
        log.info("job.planned", chunks=len(ids), attempt=claim.attempt)


def infer_chunk(ctx: WorkerContext, chunk_id: str) -> None:
    """Run one chunk on the model; the chunk that completes the set enqueues finalize."""
    with bound_context(chunk_id=chunk_id):
        with ctx.db.transaction() as session:
            job_id = session.scalar(select(Chunk.job_id).where(Chunk.id == chunk_id))
            if job_id is not None and not _may_start(ctx, session, job_id):
                # The job's window closed: the chunk stays pending, and the reconciler sends it
                # again once the window opens (chunks already running finish).
                log.info("job.chunk.waiting", job_id=job_id)
                return
            claim = claim_chunk(session, chunk_id, ctx.settings.lease_seconds)
            if claim is None:
                log.info("job.chunk.skipped")
                return
        run_claimed_chunk(ctx, claim)


def run_claimed_chunk(ctx: WorkerContext, claim: Claim, *, release_memory: bool = True) -> None:
    """Run a chunk claimed by `claim_chunk` or `claim_chunks` and record its outcome (refused if
    the claim went stale); past the attempts cap the chunk fails instead. `release_memory`
    frees MLX's buffers afterwards (not while a host loop runs other chunks on the model)."""
    with bound_context(chunk_id=claim.id), ctx.db.transaction() as session:
        chunk = session.get_one(Chunk, claim.id)
        if claim.tries > ctx.settings.max_attempts:
            reason = chunk.error_message or "the worker was lost"
            message = f"chunk {chunk.index} failed {claim.tries - 1} times (last: {reason})"
            if fail_chunk(session, claim, "attempts_exhausted", message):
                _job_ended(ctx, session, chunk.job_id)
            return
        job = session.get_one(Job, chunk.job_id)
        file = session.get(File, job.input_file_id) if job.input_file_id else None
        info, spec = _job_info(job, file), dict(chunk.spec)
    with bound_context(chunk_id=claim.id, job_id=info.id, attempt=claim.attempt):
        if ctx.settings.fault_chunk_delay_seconds:
            time.sleep(ctx.settings.fault_chunk_delay_seconds)
        crash_point(ctx.settings, "infer.before_model", str(info.params))
        started = time.perf_counter()
        try:
            output, usage = PIPELINES[info.kind].infer(ctx, info, spec)
        except Exception as exc:
            _record_chunk_failure(ctx, claim, exc, info.priority)
            return
        finally:
            if release_memory:
                ctx.release_model_memory()
        with ctx.db.transaction() as session:
            finished_job = complete_chunk(session, claim, output, usage)
            if finished_job is not None:
                on_commit(session, lambda: ctx.dispatcher.finalize(finished_job, info.priority))
        crash_point(ctx.settings, "infer.after_result")
        log.info(
            "job.chunk.done",
            seconds=round(time.perf_counter() - started, 3),
            tokens=(usage or {}).get("generated_tokens"),
        )


def _record_chunk_failure(
    ctx: WorkerContext, claim: Claim, exc: BaseException, priority: int
) -> None:
    with ctx.db.transaction() as session:
        if _is_permanent(exc):
            assert isinstance(exc, NightowlError)
            if job_id := fail_chunk(session, claim, exc.code, exc.message):
                _job_ended(ctx, session, job_id)
            log.info("job.failed", code=exc.code, message=exc.message)
        elif claim.tries >= ctx.settings.max_attempts:
            if job_id := fail_chunk(session, claim, "attempts_exhausted", _describe(exc)):
                _job_ended(ctx, session, job_id)
            log.warning("job.failed", code="attempts_exhausted", error=_describe(exc))
        elif release_chunk(session, claim, _describe(exc)):
            on_commit(session, lambda: ctx.dispatcher.infer(claim.id, priority))
            log.warning("job.chunk.retry", error=_describe(exc))


def _job_ended(ctx: WorkerContext, session: Session, job_id: str) -> None:
    """After a job ends: record its webhook event, and have its batch (if any) looked at after
    the commit."""
    job = session.scalar(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    )
    if job is None:
        return
    emit_job_event(session, ctx.dispatcher, job)
    if job.batch_id is not None:
        on_commit(session, partial(ctx.dispatcher.batch, job.batch_id))


def _add_round(ctx: WorkerContext, claim: Claim, more: MoreChunks, job_priority: int) -> None:
    with ctx.db.transaction() as session:
        ids = add_chunks(session, claim, more.specs)
        if ids is None:
            log.info("job.finalize.stale", attempt=claim.attempt)
            return
        for chunk_id in ids:
            on_commit(session, partial(ctx.dispatcher.infer, chunk_id, job_priority))
    log.info("job.round.added", chunks=len(ids))


def finalize_job(ctx: WorkerContext, job_id: str) -> None:
    """Merge a job's chunk outputs, write its artifacts, then make it `succeeded` at once.

    A kind may instead ask for another round of chunks; the job then goes back to `inferring`.
    """
    with bound_context(job_id=job_id, stage="finalizing"):
        claimed = _claim_stage(ctx, job_id, "finalizing")
        if claimed is None:
            return
        claim, job = claimed
        with ctx.db.transaction() as session:
            rows = session.scalars(
                select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.index)
            ).all()
            chunks = [ChunkResult(c.index, dict(c.spec), c.output or {}) for c in rows]
            usage = sum_usage(c.usage for c in rows if c.usage)
        try:
            finalized = PIPELINES[job.kind].finalize(ctx, job, chunks)
            if isinstance(finalized, MoreChunks):
                _add_round(ctx, claim, finalized, job.priority)
                return
            if warning := tiny_warning(chunks):  # said here once for every kind: text is noise
                finalized.result["warning"] = warning
            result_json = json.dumps(finalized.result, ensure_ascii=False, indent=2).encode()
            artifacts = {"result.json": (result_json, "application/json"), **finalized.artifacts}
            keys: dict[str, Any] = dict(finalized.stored)
            for name, (data, content_type) in artifacts.items():
                keys[name] = job_key(job.tenant_id, job.id, name)
                ctx.store.put_bytes(keys[name], data, content_type)
        except Exception as exc:
            _record_job_failure(ctx, claim, "finalizing", exc, job.priority)
            return
        with ctx.db.transaction() as session:
            if succeed_job(session, claim, keys["result.json"], keys, usage):
                _job_ended(ctx, session, job_id)
                log.info("job.succeeded", artifacts=sorted(keys))
            else:
                log.info("job.finalize.stale", attempt=claim.attempt)
