"""Finishing batches (workers only): expiry, the output and error files, the final status.

A batch is `in_progress` while any of its jobs can still run. When none can (all finished, or
the batch expired, or it was cancelled), `refresh_batch` writes an output JSONL file (one line
per succeeded request) and an error JSONL file (one per failed, expired or cancelled request),
both as ordinary files of the tenant, and moves the batch to its final status. Expiry turns the
jobs that have not finished into `expired` first; running chunks are not interrupted, but their
results are no longer used.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.batches import OPEN, request_counts
from core.db.models import Batch, Job
from core.fairness import admit
from core.files import store_file
from core.logging import bound_context, get_logger
from core.state import TERMINAL, end_jobs
from core.storage import ObjectStore
from core.webhooks import emit_batch_event
from worker.context import WorkerContext

log = get_logger("worker")


def _expire_jobs(session: Session, batch: Batch, now: datetime) -> None:
    open_jobs = session.scalars(
        select(Job.id).where(Job.batch_id == batch.id, Job.status.not_in(TERMINAL))
    )
    message = "the batch's completion window ended before this request ran"
    end_jobs(session, list(open_jobs), "expired", "batch_expired", message, now)


def _line(job: Job) -> dict[str, Any]:
    if job.status == "succeeded":
        body = {
            "id": job.id,
            "object": "job",
            "kind": job.kind,
            "status": job.status,
            "result_url": f"/v1/jobs/{job.id}/result",
            "artifacts": sorted((job.artifacts or {}).keys()),
            "usage": job.usage,
        }
        return {
            "id": f"batch_req_{job.id}",
            "custom_id": job.custom_id,
            "response": {"status_code": 200, "request_id": job.id, "body": body},
            "error": None,
        }
    code = job.error_code or job.status
    message = job.error_message or f"the request was {job.status}"
    return {
        "id": f"batch_req_{job.id}",
        "custom_id": job.custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def _write_file(
    session: Session, store: ObjectStore, batch: Batch, name: str, lines: list[dict[str, Any]]
) -> str:
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    filename = f"{batch.id}_{name}.jsonl"
    return store_file(session, store, batch.tenant_id, filename, data, "application/jsonl").id


def refresh_batch(ctx: WorkerContext, session: Session, batch_id: str, now: datetime) -> str | None:
    """Expire or finish a batch whose time is up or whose jobs are done; returns its new status.

    The final status records the batch's webhook event (if it has a URL); its first attempt is
    published after the commit.
    """
    store = ctx.store
    batch = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
    if batch is None or batch.status not in OPEN:
        return None
    final = "cancelled" if batch.status == "cancelling" else "completed"
    if batch.status == "in_progress" and now >= batch.expires_at:
        _expire_jobs(session, batch, now)
        final = "expired"
    pending = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.batch_id == batch.id, Job.status.not_in(TERMINAL))
    )
    if pending:
        return None
    batch.finalizing_at = batch.finalizing_at or now
    jobs = list(session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.id)))
    done = [_line(j) for j in jobs if j.status == "succeeded"]
    failed = [_line(j) for j in jobs if j.status != "succeeded"]
    batch.output_file_id = _write_file(session, store, batch, "output", done) if done else None
    batch.error_file_id = _write_file(session, store, batch, "errors", failed) if failed else None
    batch.status = final
    setattr(batch, f"{final}_at", now)
    session.flush()
    emit_batch_event(session, ctx.dispatcher, batch, request_counts(session, batch))
    return final


def refresh_batch_step(ctx: WorkerContext, batch_id: str) -> None:
    """Finish, expire or close a batch whose requests are all done (idempotent), and admit
    held batch jobs into the places that freed up."""
    with bound_context(batch_id=batch_id), ctx.db.transaction() as session:
        status = refresh_batch(ctx, session, batch_id, ctx.clock())
        if status is not None:
            log.info("batch.finished", status=status)
        # A batch job ended (this task runs then): its place goes to the next held job.
        admit(session, ctx.dispatcher, ctx.settings)
