"""`/v1/webhooks`: the tenant's signing secret, and the deliveries of its events."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas import WebhookDeliveryList, WebhookDeliveryOut, WebhookSecret
from api.services import webhooks as service
from core import webhooks as webhooks_core

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
DeliveryStatus = Literal["pending", "delivered", "failed"]


@router.get("/secret", response_model=WebhookSecret)
def get_secret(principal: PrincipalDep, session: SessionDep) -> WebhookSecret:
    """The secret that signs this tenant's webhooks (made on first use)."""
    return WebhookSecret(secret=webhooks_core.tenant_secret(session, principal.tenant_id))


@router.post("/secret/rotate", response_model=WebhookSecret)
def rotate_secret(principal: PrincipalDep, session: SessionDep) -> WebhookSecret:
    """A new signing secret; every attempt from now on is signed with it."""
    return WebhookSecret(secret=webhooks_core.rotate_secret(session, principal.tenant_id))


@router.get("/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(
    principal: PrincipalDep,
    session: SessionDep,
    object_id: str | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> WebhookDeliveryList:
    """The caller's webhook deliveries, newest first; `after=<last_id>` for the next page."""
    rows, has_more = service.list_deliveries(
        session, principal.tenant_id, object_id=object_id, status=status, limit=limit, after=after
    )
    return WebhookDeliveryList(
        data=[WebhookDeliveryOut.of(r) for r in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
    )


@router.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryOut)
def get_delivery(
    delivery_id: str, principal: PrincipalDep, session: SessionDep
) -> WebhookDeliveryOut:
    """One delivery: its event, URL, status, attempts and the last error."""
    return WebhookDeliveryOut.of(service.get_delivery(session, principal.tenant_id, delivery_id))
