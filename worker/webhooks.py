"""Webhook delivery (workers only): one attempt (task `nightowl.webhook`), and the re-sends.

Events are recorded with their state change by `core/webhooks.py`. `deliver` makes one attempt:

    pending --claim (lease, attempts+1)--> POST --2xx--> delivered
       ^                                       \\--other, error--> pending, next_attempt_at
       |                                                            backed off with jitter
       \\---------------------------- until webhook_max_attempts --> failed (last_error kept)

Retries are never Celery ETAs (`notes/reliability.md`): a failed attempt sets `next_attempt_at`
on the row and the reconciler publishes the delivery again once it is due (`redeliver`). A URL
the SSRF guard refuses at delivery time (DNS may have changed) fails at once. The
`webhook-id` header is the delivery id, the same on every attempt, so receivers can de-duplicate.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from core.db import Database, on_commit
from core.db.models import WebhookDelivery
from core.db.types import utcnow
from core.errors import NightowlError
from core.logging import bound_context, get_logger
from core.netguard import check_url
from core.settings import Settings
from core.webhooks import tenant_secret
from worker.context import WorkerContext

log = get_logger("webhooks")
DUE_LIMIT = 500
_RNG = random.Random()  # jitter only; tests pass their own seeded Random


def deliver_webhook(
    ctx: WorkerContext,
    delivery_id: str,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> str | None:
    """Make one attempt at a webhook delivery; returns its new status (None if not due)."""
    with bound_context(delivery_id=delivery_id):
        return deliver(ctx.db, ctx.settings, delivery_id, now=now, rng=rng)


def redeliver(ctx: WorkerContext, now: datetime | None = None) -> list[str]:
    """Publish every delivery whose next attempt is due; returns their ids."""
    with ctx.db.transaction() as session:
        ids = due_deliveries(session, now or utcnow())
        for delivery_id in ids:
            on_commit(session, partial(ctx.dispatcher.webhook, delivery_id))
    return ids


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
