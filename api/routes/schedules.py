"""`/v1/schedules`: recurring batches over an S3 prefix or a local folder."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.pagination import CursorDep
from api.schemas.schedules import FiringList, FiringOut, ScheduleCreate, ScheduleList, ScheduleOut
from api.services import schedules as service
from core.db.models import Schedule
from core.db.types import utcnow
from core.schedules import next_slot
from core.settings import Settings

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


def _out(settings: Settings, row: Schedule) -> ScheduleOut:
    return ScheduleOut.from_row(row, next_slot=next_slot(settings, row, utcnow()))


@router.post("", status_code=201, response_model=ScheduleOut)
def create_schedule(
    body: ScheduleCreate, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Create an active schedule; it first fires at the first slot after now."""
    row = service.create_schedule(session, resources.settings, principal.tenant_id, body)
    return _out(resources.settings, row)


@router.get("", response_model=ScheduleList)
def list_schedules(
    principal: PrincipalDep, session: SessionDep, resources: ResourcesDep, cursor: CursorDep
) -> ScheduleList:
    """The caller's schedules, newest first; `after=<last_id>` for the next page."""
    rows = service.list_schedules(session, principal.tenant_id, cursor)
    return ScheduleList.of(rows, lambda row: _out(resources.settings, row))


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """A schedule with its next slot."""
    row = service.get_schedule(session, principal.tenant_id, schedule_id)
    return _out(resources.settings, row)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut)
def pause_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Stop firing until resumed; slots passing meanwhile are skipped, not caught up."""
    row = service.set_status(session, principal.tenant_id, schedule_id, "pause")
    return _out(resources.settings, row)


@router.post("/{schedule_id}/resume", response_model=ScheduleOut)
def resume_schedule(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> ScheduleOut:
    """Fire again from the next slot on; the slots missed while paused are not backfilled."""
    row = service.set_status(session, principal.tenant_id, schedule_id, "resume")
    return _out(resources.settings, row)


@router.delete("/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: str, principal: PrincipalDep, session: SessionDep) -> Response:
    """Delete a schedule: it stops firing and answers 404; its firings stay as history."""
    service.set_status(session, principal.tenant_id, schedule_id, "delete")
    return Response(status_code=204)


@router.get("/{schedule_id}/firings", response_model=FiringList)
def list_firings(
    schedule_id: str, principal: PrincipalDep, session: SessionDep, cursor: CursorDep
) -> FiringList:
    """The schedule's firings, newest first: slot, status, object counts, batch, error."""
    schedule = service.get_schedule(session, principal.tenant_id, schedule_id)
    rows = service.list_firings(session, schedule, cursor)
    skipped = service.skipped_counts(session, [r.id for r in rows.items])
    return FiringList.of(rows, lambda row: FiringOut.of(row, skipped.get(row.id, 0)))
