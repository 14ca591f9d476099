"""Batch bookkeeping shared by the API and the workers: counts, expiry, and the result files.

A batch is `in_progress` while any of its jobs can still run. When none can (all finished, or
the batch expired, or it was cancelled), `refresh_batch` writes an output JSONL file (one line
per succeeded request) and an error JSONL file (one per failed, expired or cancelled request),
both as ordinary files of the tenant, and moves the batch to its final status. Expiry turns the
jobs that have not finished into `expired` first; running chunks are not interrupted, but their
results are no longer used.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.models import Batch, Job
from core.db.types import utcnow
from core.errors import Unprocessable
from core.files import store_file
from core.state import TERMINAL, stop_chunks
from core.storage import ObjectStore
from core.webhooks import emit_batch_event

if TYPE_CHECKING:
    from core.queue import Dispatcher

OPEN = ("in_progress", "cancelling")
_WINDOW = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """A completion window such as "24h", "90m" or "2d"."""
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise Unprocessable(f"completion_window {text!r} is not a duration like 24h, 90m or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def request_counts(session: Session, batch: Batch) -> dict[str, int]:
    """{total, completed, failed}: failed counts failed, expired and cancelled requests."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch.id).group_by(Job.status)
    ).all()
    by_status = {status: count for status, count in rows}
    done = by_status.get("succeeded", 0)
    failed = sum(by_status.get(s, 0) for s in ("failed", "expired", "cancelled"))
    return {"total": batch.request_total, "completed": done, "failed": failed}


def _expire_jobs(session: Session, batch: Batch, now: datetime) -> None:
    open_jobs = list(
        session.scalars(select(Job.id).where(Job.batch_id == batch.id, Job.status.not_in(TERMINAL)))
    )
    session.execute(
        update(Job)
        .where(Job.id.in_(open_jobs), Job.status.not_in(TERMINAL))
        .values(
            status="expired",
            error_code="batch_expired",
            error_message="the batch's completion window ended before this request ran",
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
    )
    for job_id in open_jobs:
        stop_chunks(session, job_id)


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


def refresh_batch(
    session: Session,
    store: ObjectStore,
    batch_id: str,
    now: datetime | None = None,
    *,
    dispatcher: Dispatcher | None = None,
) -> str | None:
    """Expire or finish a batch whose time is up or whose jobs are done; returns its new status.

    The final status records the batch's webhook event (if it has a URL); its first attempt is
    published after the commit through `dispatcher`, or by the reconciler's next pass without one.
    """
    now = now or utcnow()
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
    emit_batch_event(session, dispatcher, batch, request_counts(session, batch))
    return final
