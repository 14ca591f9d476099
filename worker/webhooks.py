"""Webhook stages: one delivery attempt (task `nightowl.webhook`), and the reconciler's re-send.

Retries are never Celery ETAs (`notes/reliability.md`): a failed attempt sets `next_attempt_at`
on the row and the reconciler publishes the delivery again once it is due.
"""

from __future__ import annotations

import random
from datetime import datetime
from functools import partial

from core.db import on_commit
from core.db.types import utcnow
from core.logging import bound_context
from core.webhooks import deliver, due_deliveries
from worker.context import WorkerContext


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
