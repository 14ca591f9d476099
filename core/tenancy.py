"""Tenant isolation of reads by id: another tenant's id answers exactly like an unknown one."""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from core.errors import NotFound


class _TenantRow(Protocol):
    tenant_id: str


Row = TypeVar("Row", bound=_TenantRow)


def owned(session: Session, model: type[Row], tenant_id: str, row_id: str, what: str) -> Row:
    """The tenant's `model` row `row_id`; NotFound ("no {what} {id}") for any other tenant's."""
    row = session.get(model, row_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no {what} {row_id}")
    return row
