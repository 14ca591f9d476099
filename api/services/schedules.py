"""Schedules of a tenant: validate and create, read, list, pause/resume/delete, firings.

Firing them is beat's (`worker.schedule_firing`); the slots they fire at are `core.schedules`.

Decisions:

- Cron expressions have five fields (or `@daily`-style aliases); seconds are refused, since
  beat looks only every `reconcile_interval_seconds`.
- An S3 source is read with the service's own S3 endpoint and credentials, so a tenant could
  name any bucket those credentials reach. Only buckets listed in
  `NIGHTOWL_SCHEDULE_S3_BUCKETS` may be sources (none by default), and the service's own bucket
  never: it holds every tenant's files.
- Deleting is soft (status `deleted`): the API then answers 404, beat skips the row, and its
  firings stay in SQL as history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from croniter import croniter
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.pagination import Cursor, Rows, page
from api.schemas.schedules import JobTemplate, LocalSource, S3Source, ScheduleCreate
from core.batches import parse_window
from core.db.models import Schedule, ScheduleFiring, ScheduleObject
from core.db.types import new_id, utcnow
from core.errors import NotFound, Unprocessable
from core.jobs import JobCreate, checked_params, unknown_window
from core.netguard import check_url
from core.schedules import local_root_of, time_zone
from core.settings import Settings
from core.tenancy import owned

_PLACEHOLDER_FILE = "file_placeholder"


def _check_cron(expr: str) -> None:
    fields = expr.split()
    if not (len(fields) == 5 or (len(fields) == 1 and fields[0].startswith("@"))):
        raise Unprocessable(
            f'cron {expr!r} must have five fields (minute hour day month weekday), e.g. "0 2 * * *"'
        )
    if not croniter.is_valid(expr):
        raise Unprocessable(f"cron {expr!r} is not a valid cron expression")


def _check_template(settings: Settings, template: JobTemplate) -> None:
    try:
        body = JobCreate(
            kind=template.kind,
            input={"file_id": _PLACEHOLDER_FILE},
            params=template.params,
            priority=template.priority if template.priority is not None else 5,
            window=template.window,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"template.{where}: {first['msg']}") from None
    checked_params(body)  # the same kind and params check as POST /v1/jobs
    if template.window is not None and template.window not in settings.window_table:
        raise Unprocessable("template: " + unknown_window(settings, template.window))


def validate_schedule(settings: Settings, body: ScheduleCreate) -> None:
    """Refuse (Unprocessable) a schedule that could never fire or whose jobs could never run."""
    if (body.cron is None) == (body.window is None):
        raise Unprocessable("give exactly one of cron and window")
    time_zone(body.timezone)
    if body.cron is not None:
        _check_cron(body.cron)
    if body.window is not None and body.window not in settings.window_table:
        raise Unprocessable(unknown_window(settings, body.window))
    if isinstance(body.source, S3Source):
        if settings.s3_bucket and body.source.bucket == settings.s3_bucket:
            raise Unprocessable("source.bucket is the service's own storage bucket")
        if body.source.bucket not in settings.schedule_s3_buckets:
            allowed = (
                ", ".join(settings.schedule_s3_buckets) or "none (NIGHTOWL_SCHEDULE_S3_BUCKETS)"
            )
            raise Unprocessable(
                f"source.bucket {body.source.bucket!r} is not one schedules may read; "
                f"allowed: {allowed}"
            )
    else:
        local_root_of(settings, body.source.path)
    parse_window(body.completion_window)
    _check_template(settings, body.template)
    if body.webhook_url is not None:
        check_url(str(body.webhook_url), settings.fetch_allow_networks)


def create_schedule(
    session: Session,
    settings: Settings,
    tenant_id: str,
    body: ScheduleCreate,
    now: datetime | None = None,
) -> Schedule:
    """Validate and insert an active schedule; its first slot is the first one after `now`."""
    validate_schedule(settings, body)
    now = now or utcnow()
    source = body.source.model_dump()
    if isinstance(body.source, LocalSource):
        source["path"] = str(local_root_of(settings, body.source.path))
    schedule = Schedule(
        id=new_id("sched"),
        tenant_id=tenant_id,
        name=body.name,
        status="active",
        cron=body.cron,
        timezone=body.timezone,
        window=body.window,
        source=source,
        filter=body.filter.model_dump(),
        template=body.template.model_dump(exclude_none=True),
        completion_window=body.completion_window,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        fire_after=now,
        updated_at=now,
    )
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(session: Session, tenant_id: str, schedule_id: str) -> Schedule:
    """The tenant's schedule; another tenant's id, or a deleted schedule, is NotFound."""
    schedule = owned(session, Schedule, tenant_id, schedule_id, "schedule")
    if schedule.status == "deleted":
        raise NotFound(f"no schedule {schedule_id}")
    return schedule


def list_schedules(session: Session, tenant_id: str, cursor: Cursor) -> Rows[Schedule]:
    """The tenant's schedules (not deleted), newest first."""
    query = select(Schedule).where(Schedule.tenant_id == tenant_id, Schedule.status != "deleted")
    return page(session, query, Schedule.id, cursor)


def set_status(
    session: Session,
    tenant_id: str,
    schedule_id: str,
    action: Literal["pause", "resume", "delete"],
    now: datetime | None = None,
) -> Schedule:
    """Pause, resume (slots up to now are skipped) or delete a schedule; repeats are no-ops."""
    schedule = get_schedule(session, tenant_id, schedule_id)
    now = now or utcnow()
    if action == "pause":
        schedule.status = "paused"
    elif action == "resume" and schedule.status == "paused":
        schedule.status, schedule.fire_after = "active", now
    elif action == "delete":
        schedule.status = "deleted"
    schedule.updated_at = now
    session.flush()
    return schedule


def list_firings(session: Session, schedule: Schedule, cursor: Cursor) -> Rows[ScheduleFiring]:
    """A schedule's firings, newest first."""
    query = select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule.id)
    return page(session, query, ScheduleFiring.id, cursor)


def skipped_counts(session: Session, firing_ids: list[str]) -> dict[str, int]:
    """How many new objects each firing took without a file (unreadable kind, or too large)."""
    rows = session.execute(
        select(ScheduleObject.firing_id, func.count())
        .where(ScheduleObject.firing_id.in_(firing_ids), ScheduleObject.file_id.is_(None))
        .group_by(ScheduleObject.firing_id)
    )
    return {firing_id: count for firing_id, count in rows}
