"""`/v1/schedules`: recurring batches over an S3 prefix or a local folder (core/schedules.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.schemas import FiringList, FiringOut, ScheduleList, ScheduleOut
from core import schedules as core
from core.db.models import Schedule
from core.db.types import utcnow
from core.schedules import ScheduleCreate
from core.settings import Settings

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])
Limit = Annotated[int, Query(ge=1, le=100)]


def _out(settings: Settings, row: Schedule) -> ScheduleOut:
    return ScheduleOut.of(row, core.next_slot(settings, row, utcnow()))


@router.post("", status_code=201, response_model=ScheduleOut)
def create_schedule(
    body: ScheduleCreate, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Create an active schedule; it first fires at the first slot after now."""
    row = core.create_schedule(session, resources.settings, principal.tenant_id, body)
    return _out(resources.settings, row)


@router.get("", response_model=ScheduleList)
def list_schedules(
    principal: PrincipalDep,
    session: SessionDep,
    resources: ResourcesDep,
    limit: Limit = 20,
    after: str | None = None,
) -> ScheduleList:
    """The caller's schedules, newest first; `after=<last_id>` for the next page."""
    rows, has_more = core.list_schedules(session, principal.tenant_id, limit, after)
    return ScheduleList(
        data=[_out(resources.settings, r) for r in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
    )


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """A schedule with its next slot."""
    return _out(resources.settings, core.get_schedule(session, principal.tenant_id, schedule_id))


@router.post("/{schedule_id}/pause", response_model=ScheduleOut)
def pause_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Stop firing until resumed; slots passing meanwhile are skipped, not caught up."""
    row = core.set_status(session, principal.tenant_id, schedule_id, "pause")
    return _out(resources.settings, row)


@router.post("/{schedule_id}/resume", response_model=ScheduleOut)
def resume_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Fire again from the next slot on; the slots missed while paused are not backfilled."""
    row = core.set_status(session, principal.tenant_id, schedule_id, "resume")
    return _out(resources.settings, row)


@router.delete("/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: str, principal: PrincipalDep, session: SessionDep) -> Response:
    """Delete a schedule: it stops firing and answers 404; its firings stay as history."""
    core.set_status(session, principal.tenant_id, schedule_id, "delete")
    return Response(status_code=204)


@router.get("/{schedule_id}/firings", response_model=FiringList)
def list_firings(
    schedule_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Limit = 20,
    after: str | None = None,
) -> FiringList:
    """The schedule's firings, newest first: slot, status, object counts, batch, error."""
    schedule = core.get_schedule(session, principal.tenant_id, schedule_id)
    rows, has_more = core.list_firings(session, schedule, limit, after)
    skipped = core.skipped_counts(session, [r.id for r in rows])
    return FiringList(
        data=[FiringOut.of(r, skipped.get(r.id, 0)) for r in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
    )
