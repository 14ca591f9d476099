"""`/v1/webhooks` models: the tenant's signing secret and its deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from api.pagination import Cursor, Page
from api.schemas import ApiObject
from core.db.models import WebhookDelivery


class DeliveryQuery(Cursor):
    """`GET /v1/webhooks/deliveries`: a page of deliveries, optionally of one object or status."""

    object_id: str | None = None
    status: Literal["pending", "delivered", "failed"] | None = None


class WebhookSecret(BaseModel):
    """The tenant's Standard Webhooks signing secret ("whsec_" + base64)."""

    secret: str


class WebhookDeliveryOut(ApiObject):
    """One webhook event for one URL and how its delivery went."""

    object: Literal["webhook.delivery"] = "webhook.delivery"
    event: str
    object_id: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> WebhookDeliveryOut:
        """The delivery as the API shows it: a next attempt only while it is pending."""
        next_attempt_at = row.next_attempt_at if row.status == "pending" else None
        return cls.from_row(row, next_attempt_at=next_attempt_at)


class WebhookDeliveryList(Page[WebhookDeliveryOut]):
    pass
