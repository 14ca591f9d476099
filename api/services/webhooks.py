"""Webhook deliveries of a tenant: read and list with a cursor (sending is `core.webhooks`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import WebhookDelivery
from core.errors import NotFound


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    """The tenant's delivery; another tenant's id is NotFound like an unknown one."""
    row = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.tenant_id == tenant_id
        )
    )
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return row


def list_deliveries(
    session: Session,
    tenant_id: str,
    *,
    object_id: str | None,
    status: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[WebhookDelivery], bool]:
    """The tenant's deliveries, newest first, `limit` at a time after the cursor `after`."""
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if object_id:
        query = query.where(WebhookDelivery.object_id == object_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if after:
        query = query.where(WebhookDelivery.id < after)
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
