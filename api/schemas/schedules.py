"""`/v1/schedules` models: what a schedule is made of, and its firings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api.pagination import Page
from api.schemas import ApiObject
from core.db.models import ScheduleFiring
from core.schedules import ObjectFilter


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


class ScheduleOut(ApiObject):
    """A schedule; `next_slot` is when it fires next (None while paused)."""

    object: Literal["schedule"] = "schedule"
    name: str | None
    status: str
    cron: str | None
    timezone: str
    window: str | None
    source: dict[str, Any]
    filter: dict[str, Any]
    template: dict[str, Any]
    completion_window: str
    webhook_url: str | None
    created_at: datetime
    updated_at: datetime
    next_slot: datetime | None


class ScheduleList(Page[ScheduleOut]):
    pass


class FiringOut(ApiObject):
    """One (schedule, slot): `running`, then `submitted` (with its batch), `empty` or `failed`."""

    object: Literal["schedule.firing"] = "schedule.firing"
    schedule_id: str
    slot: datetime
    status: str
    objects_listed: int
    objects_new: int
    objects_skipped: int
    batch_id: str | None
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: ScheduleFiring, skipped: int) -> FiringOut:
        """The firing as the API shows it; `skipped` new objects were taken without a file."""
        return cls.from_row(row, objects_skipped=skipped, error=row.error_message)


class FiringList(Page[FiringOut]):
    pass
