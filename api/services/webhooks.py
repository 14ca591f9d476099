"""Webhooks of a tenant: its signing secret, and its deliveries (sending is `core.webhooks`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.pagination import Rows, page
from api.schemas.webhooks import DeliveryQuery
from core.db.models import WebhookDelivery
from core.tenancy import owned
from core.webhooks import rotate_secret, tenant_secret

# The secret is core's: the worker signs every delivery with it (worker/webhooks.py).
__all__ = ["get_delivery", "list_deliveries", "rotate_secret", "tenant_secret"]


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    """The tenant's delivery; another tenant's id is NotFound like an unknown one."""
    return owned(session, WebhookDelivery, tenant_id, delivery_id, "webhook delivery")


def list_deliveries(
    session: Session, tenant_id: str, query: DeliveryQuery
) -> Rows[WebhookDelivery]:
    """The tenant's deliveries, newest first, optionally only those of an object or status."""
    rows = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    return page(session, rows, WebhookDelivery.id, query)
