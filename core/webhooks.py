"""Webhooks in the Standard Webhooks format: recorded with the state change, sent after commit.

`emit` records one delivery per (object, event) in the transaction that changes the object, so
an event exists exactly when its state change does, and a code path that runs twice records it
once. After the commit the first attempt is published; every later attempt is published by the
reconciler (`due_deliveries`), never by a Celery ETA. `deliver` makes one attempt:

    pending --claim (lease, attempts+1)--> POST --2xx--> delivered
       ^                                       \\--other, error--> pending, next_attempt_at
       |                                                            backed off with jitter
       \\---------------------------- until webhook_max_attempts --> failed (last_error kept)

A URL the SSRF guard refuses at delivery time (DNS may have changed) fails at once. The body is
signed with the tenant's secret ("whsec_" + base64 of 24 random bytes, made on first use); the
`webhook-id` header is the delivery id, the same on every attempt, so receivers can de-duplicate.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from core.db import Database, on_commit
from core.db.models import Batch, Job, Tenant, WebhookDelivery
from core.db.types import new_id, utcnow
from core.errors import NightowlError
from core.logging import get_logger
from core.netguard import check_url
from core.queue import Dispatcher
from core.settings import Settings

log = get_logger("webhooks")
JOB_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}
BATCH_EVENTS = {s: f"batch.{s}" for s in ("completed", "failed", "expired", "cancelled")}
DUE_LIMIT = 500
_RNG = random.Random()  # jitter only; tests pass their own seeded Random


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
    event = JOB_EVENTS.get(job.status)
    if job.webhook_url is None or event is None:
        return None
    return emit(
        session,
        dispatcher,
        tenant_id=job.tenant_id,
        event=event,
        object_id=job.id,
        url=job.webhook_url,
        data=job_event_data(job),
    )


def emit_batch_event(
    session: Session, dispatcher: Dispatcher | None, batch: Batch, counts: dict[str, int]
) -> str | None:
    """Record the event of a batch that reached a final status, if it has a webhook URL."""
    event = BATCH_EVENTS.get(batch.status)
    if batch.webhook_url is None or event is None:
        return None
    data = {
        "id": batch.id,
        "object": "batch",
        "status": batch.status,
        "request_counts": counts,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
    }
    return emit(
        session,
        dispatcher,
        tenant_id=batch.tenant_id,
        event=event,
        object_id=batch.id,
        url=batch.webhook_url,
        data=data,
    )


def due_deliveries(session: Session, now: datetime, limit: int = DUE_LIMIT) -> list[str]:
    """Pending deliveries whose next attempt is due and that nobody holds (for the reconciler)."""
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def backoff_seconds(settings: Settings, attempts: int, rng: random.Random) -> float:
    """The wait after failed attempt number `attempts`: exponential, capped, times [0.5, 1.5)."""
    doubled = settings.webhook_backoff_seconds * float(2 ** (attempts - 1))
    base = min(settings.webhook_max_backoff_seconds, doubled)
    return base * (0.5 + rng.random())


@dataclass(frozen=True)
class _Attempt:
    id: str
    attempts: int
    url: str
    body: str
    secret: str


def _claim(
    session: Session, settings: Settings, delivery_id: str, now: datetime
) -> _Attempt | None:
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds + 30)
    claimed = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .values(lease_until=lease, attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.get_one(WebhookDelivery, delivery_id, populate_existing=True)
    if row.attempts > settings.webhook_max_attempts:
        # The sender of the last allowed attempt died before recording it; this claim sends nothing.
        row.status, row.lease_until, row.attempts = "failed", None, row.attempts - 1
        row.last_error = row.last_error or "attempts exhausted: the sender was lost"
        return None
    body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False)
    return _Attempt(row.id, row.attempts, row.url, body, tenant_secret(session, row.tenant_id))


def _post(settings: Settings, attempt: _Attempt) -> tuple[int | None, str | None]:
    """One POST to the pinned address; (status code, error) where error None means delivered."""
    target = check_url(attempt.url, settings.fetch_allow_networks)
    sent_at = utcnow()  # the real clock: receivers reject signatures more than 5 minutes off
    headers = {
        "content-type": "application/json",
        "user-agent": "nightowl-webhooks",
        "host": target.host_header,
        "webhook-id": attempt.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(attempt.secret).sign(attempt.id, sent_at, attempt.body),
    }
    # No environment proxies (they would bypass the pinned address) and no redirects.
    with (
        httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        ) as client,
        client.stream(
            "POST",
            target.connect_url,
            content=attempt.body.encode(),
            headers=headers,
            extensions=target.extensions,
        ) as response,
    ):
        code = response.status_code
    if 200 <= code < 300:
        return code, None
    if 300 <= code < 400:
        return code, f"HTTP {code}: redirects are not followed"
    return code, f"HTTP {code}"


def deliver(
    db: Database,
    settings: Settings,
    delivery_id: str,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> str | None:
    """Make one attempt at a delivery; returns its new status, or None if it was not claimable."""
    now = now or utcnow()
    with db.transaction() as session:
        attempt = _claim(session, settings, delivery_id, now)
    if attempt is None:
        return None
    code: int | None = None
    permanent = False
    try:
        code, error = _post(settings, attempt)
    except NightowlError as exc:  # the SSRF guard: refused now, or (retryable) DNS failed
        error, permanent = f"{exc.code}: {exc.message}", not exc.retryable
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    values: dict[str, Any] = {"lease_until": None, "last_status_code": code}
    if error is None:
        values |= {"status": "delivered", "delivered_at": now, "last_error": None}
    elif permanent or attempt.attempts >= settings.webhook_max_attempts:
        values |= {"status": "failed", "last_error": error}
    else:
        wait = backoff_seconds(settings, attempt.attempts, rng or _RNG)
        values |= {"last_error": error, "next_attempt_at": now + timedelta(seconds=wait)}
    with db.transaction() as session:
        # Refused when another sender took over after our lease ran out.
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == attempt.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    status = str(values.get("status", "pending"))
    log.info(
        "webhook.attempt",
        delivery_id=delivery_id,
        attempt=attempt.attempts,
        status=status,
        status_code=code,
        error=error,
    )
    return status
