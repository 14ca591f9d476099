"""Schedules: what both sides share of recurring batches over an S3 prefix or a local folder.

A schedule names when (`cron` in its `timezone`, or the opening of a named window), what (a
source and a filter) and how (a job template). Each *slot* (a cron fire time, or a window's
opening) fires at most once: `worker.schedule_firing.fire_due` records the (schedule, slot) row
first, and the unique key on that pair is what keeps two beat processes from both firing. The
API side (the request models, validation, the CRUD of `/v1/schedules`) is
`api/services/schedules.py`; here are the slots, the object filter and the local-folder guard.

Decisions:

- Only the latest slot at or before "now" fires. A beat that was down for three nights fires
  once when it comes back, not three times: one firing takes every new object anyway.
- `fire_after` is set at creation and on resume; slots at or before it never fire. A schedule
  created at 10:00 with `0 2 * * *` first fires tomorrow at 02:00, and resuming after a pause
  does not backfill the slots missed while paused. Objects that arrived meanwhile are not lost:
  they are new at the next slot that fires.
- Local folders may be sources only below `NIGHTOWL_SCHEDULE_LOCAL_ROOTS`, checked when the
  schedule is made and again at every firing, since the operator's roots may have changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.db.models import Schedule
from core.errors import Unprocessable
from core.settings import Settings


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


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` of a schedule; Unprocessable when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


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


def latest_slot(settings: Settings, schedule: Schedule, now: datetime) -> datetime | None:
    """The latest slot at or before `now` (UTC), or None when its window is no longer defined."""
    if schedule.cron is not None:
        local = now.astimezone(time_zone(schedule.timezone)) + timedelta(microseconds=1)
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
        local = start.astimezone(time_zone(schedule.timezone))
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
