"""Webhooks in the Standard Webhooks format: recorded with the state change, sent after commit.

`emit` records one delivery per (object, event) in the transaction that changes the object, so
an event exists exactly when its state change does, and a code path that runs twice records it
once. After the commit the first attempt is published; every later attempt is published by the
reconciler, never by a Celery ETA. Recording runs in the API and the workers; the HTTP delivery
runs only in workers (`worker/webhooks.py`). The body is signed with the tenant's secret
("whsec_" + base64 of 24 random bytes, made on first use, `tenant_secret`).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import on_commit
from core.db.models import Batch, Job, Tenant, WebhookDelivery
from core.db.types import new_id, utcnow
from core.logging import get_logger
from core.queue import Dispatcher

log = get_logger("webhooks")
JOB_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}
BATCH_EVENTS = {s: f"batch.{s}" for s in ("completed", "failed", "expired", "cancelled")}


def new_secret() -> str:
    """A Standard Webhooks signing secret: "whsec_" + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def tenant_secret(session: Session, tenant_id: str) -> str:
    """The tenant's signing secret, made on first use (a concurrent first use keeps one)."""
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.webhook_secret.is_(None))
        .values(webhook_secret=new_secret())
        .execution_options(synchronize_session=False)
    )
    secret = session.scalar(select(Tenant.webhook_secret).where(Tenant.id == tenant_id))
    assert secret is not None
    return secret


def rotate_secret(session: Session, tenant_id: str) -> str:
    """Replace the tenant's signing secret; attempts from now on are signed with the new one."""
    secret = new_secret()
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(webhook_secret=secret)
        .execution_options(synchronize_session=False)
    )
    return secret


def emit(
    session: Session,
    dispatcher: Dispatcher | None,
    *,
    tenant_id: str,
    event: str,
    object_id: str,
    url: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> str | None:
    """Record `event` for `object_id` once; the first attempt is published after the commit.

    Returns the delivery id, or None when this event was already recorded. Without a
    dispatcher the delivery waits for the reconciler's next pass.
    """
    now = now or utcnow()
    delivery = WebhookDelivery(
        id=new_id("msg"),
        tenant_id=tenant_id,
        event=event,
        object_id=object_id,
        url=url,
        payload={"type": event, "timestamp": now.isoformat(), "data": data},
        status="pending",
        attempts=0,
        next_attempt_at=now,
    )
    try:
        # A savepoint: the unique (object_id, event) makes a second emit a no-op.
        with session.begin_nested():
            session.add(delivery)
    except IntegrityError:
        return None
    if dispatcher is not None:
        on_commit(session, partial(dispatcher.webhook, delivery.id))
    return delivery.id


def job_event_data(job: Job) -> dict[str, Any]:
    """The `data` of a job event."""
    error = {"code": job.error_code, "message": job.error_message or ""} if job.error_code else None
    return {
        "id": job.id,
        "object": "job",
        "status": job.status,
        "kind": job.kind,
        "batch_id": job.batch_id,
        "custom_id": job.custom_id,
        "error": error,
        "artifacts": sorted((job.artifacts or {}).keys()),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def emit_job_event(session: Session, dispatcher: Dispatcher | None, job: Job) -> str | None:
    """Record the event of a job that ended, if it has a webhook URL."""
    return _emit_final(session, dispatcher, job, JOB_EVENTS, job_event_data(job))


def emit_batch_event(
    session: Session, dispatcher: Dispatcher | None, batch: Batch, counts: dict[str, int]
) -> str | None:
    """Record the event of a batch that reached a final status, if it has a webhook URL."""
    data = {
        "id": batch.id,
        "object": "batch",
        "status": batch.status,
        "request_counts": counts,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
    }
    return _emit_final(session, dispatcher, batch, BATCH_EVENTS, data)


def _emit_final(
    session: Session,
    dispatcher: Dispatcher | None,
    row: Job | Batch,
    events: dict[str, str],
    data: dict[str, Any],
) -> str | None:
    """Record the event of `row`'s status (one of `events`), if it has a webhook URL."""
    event = events.get(row.status)
    if row.webhook_url is None or event is None:
        return None
    return emit(
        session,
        dispatcher,
        tenant_id=row.tenant_id,
        event=event,
        object_id=row.id,
        url=row.webhook_url,
        data=data,
    )
