"""`/v1/webhooks`: the tenant's signing secret, and the deliveries of its events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas.webhooks import (
    DeliveryQuery,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookSecret,
)
from api.services import webhooks as service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.get("/secret", response_model=WebhookSecret)
def get_secret(principal: PrincipalDep, session: SessionDep) -> WebhookSecret:
    """The secret that signs this tenant's webhooks (made on first use)."""
    return WebhookSecret(secret=service.tenant_secret(session, principal.tenant_id))


@router.post("/secret/rotate", response_model=WebhookSecret)
def rotate_secret(principal: PrincipalDep, session: SessionDep) -> WebhookSecret:
    """A new signing secret; every attempt from now on is signed with it."""
    return WebhookSecret(secret=service.rotate_secret(session, principal.tenant_id))


@router.get("/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(
    principal: PrincipalDep, session: SessionDep, query: Annotated[DeliveryQuery, Query()]
) -> WebhookDeliveryList:
    """The caller's webhook deliveries, newest first; `after=<last_id>` for the next page."""
    rows = service.list_deliveries(session, principal.tenant_id, query)
    return WebhookDeliveryList.of(rows, WebhookDeliveryOut.of)


@router.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryOut)
def get_delivery(
    delivery_id: str, principal: PrincipalDep, session: SessionDep
) -> WebhookDeliveryOut:
    """One delivery: its event, URL, status, attempts and the last error."""
    row = service.get_delivery(session, principal.tenant_id, delivery_id)
    return WebhookDeliveryOut.of(row)
