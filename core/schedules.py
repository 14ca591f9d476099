"""Schedules: recurring batches over an S3 prefix or a local folder (`/v1/schedules`).

A schedule names when (`cron` in its `timezone`, or the opening of a named window), what (a
source and a filter) and how (a job template). Each *slot* (a cron fire time, or a window's
opening) fires at most once: `core.schedule_firing.fire_due` records the (schedule, slot) row
first, and the unique key on that pair is what keeps two beat processes from both firing.

Decisions:

- Only the latest slot at or before "now" fires. A beat that was down for three nights fires
  once when it comes back, not three times: one firing takes every new object anyway.
- `fire_after` is set at creation and on resume; slots at or before it never fire. A schedule
  created at 10:00 with `0 2 * * *` first fires tomorrow at 02:00, and resuming after a pause
  does not backfill the slots missed while paused. Objects that arrived meanwhile are not lost:
  they are new at the next slot that fires.
- Deleting is soft (status `deleted`): the API then answers 404, beat skips the row, and its
  firings stay in SQL as history.
- Cron expressions have five fields (or `@daily`-style aliases); seconds are refused, since
  beat looks only every `reconcile_interval_seconds`.
- An S3 source is read with the service's own S3 endpoint and credentials, so a tenant could
  name any bucket those credentials reach. Only buckets listed in
  `NIGHTOWL_SCHEDULE_S3_BUCKETS` may be sources (none by default), and the service's own bucket
  never: it holds every tenant's files. Local folders likewise only below
  `NIGHTOWL_SCHEDULE_LOCAL_ROOTS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.batches import parse_window
from core.db.models import Schedule, ScheduleFiring, ScheduleObject
from core.db.types import new_id, utcnow
from core.errors import NotFound, Unprocessable
from core.jobs import JobCreate, checked_params, unknown_window
from core.netguard import check_url
from core.settings import Settings

_PLACEHOLDER_FILE = "file_placeholder"


class S3Source(BaseModel):
    """Objects under `prefix` in `bucket`, read with the service's S3 endpoint and credentials."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=1024)


class LocalSource(BaseModel):
    """Files below `path`, which must lie under one of `Settings.schedule_local_roots`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local"]
    path: str = Field(min_length=1, max_length=4096)


class ObjectFilter(BaseModel):
    """Which listed objects a firing takes: by extension (any case) and size in bytes."""

    model_config = ConfigDict(extra="forbid")

    extensions: list[str] = Field(default_factory=list, max_length=50)
    min_bytes: int | None = Field(default=None, ge=0)
    max_bytes: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _normalise(self) -> ObjectFilter:
        self.extensions = sorted({"." + e.strip().lstrip(".").lower() for e in self.extensions})
        if any(e == "." for e in self.extensions):
            raise ValueError("extensions must not be empty")
        low, high = self.min_bytes, self.max_bytes
        if low is not None and high is not None and low > high:
            raise ValueError("min_bytes is larger than max_bytes")
        return self

    def accepts(self, key: str, size: int) -> bool:
        """Whether an object named `key` of `size` bytes passes the filter."""
        if self.extensions and not key.lower().endswith(tuple(self.extensions)):
            return False
        if self.min_bytes is not None and size < self.min_bytes:
            return False
        return self.max_bytes is None or size <= self.max_bytes


class JobTemplate(BaseModel):
    """The job each new object becomes: a kind and its params, and optionally a priority/window."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int | None = Field(default=None, ge=0, le=9)
    window: str | None = Field(default=None, max_length=40)


class ScheduleCreate(BaseModel):
    """`POST /v1/schedules`: exactly one of `cron` and `window`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    cron: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    window: str | None = Field(default=None, max_length=40)
    source: S3Source | LocalSource = Field(discriminator="type")
    filter: ObjectFilter = Field(default_factory=ObjectFilter)
    template: JobTemplate
    completion_window: str = Field(default="24h", max_length=20)
    webhook_url: AnyHttpUrl | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


def _check_cron(expr: str) -> None:
    fields = expr.split()
    if not (len(fields) == 5 or (len(fields) == 1 and fields[0].startswith("@"))):
        raise Unprocessable(
            f'cron {expr!r} must have five fields (minute hour day month weekday), e.g. "0 2 * * *"'
        )
    if not croniter.is_valid(expr):
        raise Unprocessable(f"cron {expr!r} is not a valid cron expression")


def local_root_of(settings: Settings, raw: str) -> Path:
    """The resolved folder of a local source; Unprocessable unless under an allowed root."""
    if not settings.schedule_local_roots:
        raise Unprocessable(
            "local folder sources are disabled: an operator must list the folders users may "
            "schedule over in NIGHTOWL_SCHEDULE_LOCAL_ROOTS"
        )
    try:
        path = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError):
        raise Unprocessable(f"source.path {raw!r} does not exist") from None
    if not path.is_dir():
        raise Unprocessable(f"source.path {raw!r} is not a folder")
    roots = [root.resolve() for root in settings.schedule_local_roots]
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise Unprocessable(f"source.path {raw!r} is not under an allowed folder ({allowed})")
    return path


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
    _zone(body.timezone)
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


def latest_slot(settings: Settings, schedule: Schedule, now: datetime) -> datetime | None:
    """The latest slot at or before `now` (UTC), or None when its window is no longer defined."""
    if schedule.cron is not None:
        local = now.astimezone(_zone(schedule.timezone)) + timedelta(microseconds=1)
        slot: datetime = croniter(schedule.cron, local).get_prev(datetime)
        return slot.astimezone(now.tzinfo)
    window = settings.window_table.get(schedule.window or "")
    return window.last_open(now) if window is not None else None


def next_slot(settings: Settings, schedule: Schedule, now: datetime) -> datetime | None:
    """The first slot after `now` and after `fire_after` that would fire; None unless active."""
    if schedule.status != "active":
        return None
    start = max(now, schedule.fire_after)
    if schedule.cron is not None:
        local = start.astimezone(_zone(schedule.timezone))
        slot: datetime = croniter(schedule.cron, local).get_next(datetime)
        return slot.astimezone(now.tzinfo)
    window = settings.window_table.get(schedule.window or "")
    if window is None:
        return None
    local_start = start.astimezone(window.zone)
    for days in range(3):
        day = (local_start + timedelta(days=days)).date()
        opening = datetime.combine(day, window.start, tzinfo=window.zone)
        if opening > start:
            return opening.astimezone(now.tzinfo)
    return None


def get_schedule(session: Session, tenant_id: str, schedule_id: str) -> Schedule:
    """The tenant's schedule; another tenant's id, or a deleted schedule, is NotFound."""
    schedule = session.scalar(
        select(Schedule).where(
            Schedule.id == schedule_id,
            Schedule.tenant_id == tenant_id,
            Schedule.status != "deleted",
        )
    )
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}")
    return schedule


def list_schedules(
    session: Session, tenant_id: str, limit: int, after: str | None
) -> tuple[list[Schedule], bool]:
    """The tenant's schedules (not deleted), newest first, with a cursor."""
    query = select(Schedule).where(Schedule.tenant_id == tenant_id, Schedule.status != "deleted")
    if after:
        query = query.where(Schedule.id < after)
    rows = list(session.scalars(query.order_by(Schedule.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


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


def list_firings(
    session: Session, schedule: Schedule, limit: int, after: str | None
) -> tuple[list[ScheduleFiring], bool]:
    """A schedule's firings, newest first, with a cursor."""
    query = select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule.id)
    if after:
        query = query.where(ScheduleFiring.id < after)
    rows = list(session.scalars(query.order_by(ScheduleFiring.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def skipped_counts(session: Session, firing_ids: list[str]) -> dict[str, int]:
    """How many new objects each firing took without a file (unreadable kind, or too large)."""
    rows = session.execute(
        select(ScheduleObject.firing_id, func.count())
        .where(ScheduleObject.firing_id.in_(firing_ids), ScheduleObject.file_id.is_(None))
        .group_by(ScheduleObject.firing_id)
    )
    return {firing_id: count for firing_id, count in rows}
