"""Pydantic models of the REST contract (DESIGN.md): what clients send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from core.db.models import Batch, File, Job, Schedule, ScheduleFiring, WebhookDelivery
from core.jobs import JobCreate, JobInput

__all__ = ["JobCreate", "JobInput"]  # the request models live with job creation, in core


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: `{"error": {"code", "message"}}`."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


# Documented on every route (api/app.py), replacing FastAPI's default 422 schema, which is not
# the body the error handlers send.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Client error: `{error: {code, message}}`"},
    "5XX": {"model": ErrorOut, "description": "Server error: `{error: {code, message}}`"},
}


class FileOut(BaseModel):
    id: str
    object: Literal["file"] = "file"
    filename: str
    bytes: int
    sha256: str
    content_type: str
    created_at: datetime

    @classmethod
    def of(cls, row: File) -> FileOut:
        return cls(
            id=row.id,
            filename=row.filename,
            bytes=row.bytes,
            sha256=row.sha256,
            content_type=row.content_type,
            created_at=row.created_at,
        )


class Progress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    kind: str
    status: str
    priority: int
    input: dict[str, Any]
    params: dict[str, Any]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    not_before: datetime | None
    error: ErrorBody | None
    usage: dict[str, Any] | None
    artifacts: list[str]
    batch_id: str | None = None
    custom_id: str | None = None

    @classmethod
    def of(cls, row: Job, usage: dict[str, Any] | None = None) -> JobOut:
        error = (
            ErrorBody(code=row.error_code, message=row.error_message or "")
            if row.error_code
            else None
        )
        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            priority=row.priority,
            input=row.spec.get("input", {}),
            params=row.spec.get("params", {}),
            progress=Progress(done=row.chunks_done, total=row.chunks_total),
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            not_before=row.not_before,
            error=error,
            usage=row.usage if row.usage is not None else usage,
            artifacts=sorted((row.artifacts or {}).keys()),
            batch_id=row.batch_id,
            custom_id=row.custom_id,
        )


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    has_more: bool
    last_id: str | None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


class BatchCreate(BaseModel):
    """`POST /v1/batches`, as in the OpenAI Batch API."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(max_length=64)
    endpoint: Literal["/v1/jobs"]
    completion_window: str = Field(default="24h", max_length=20)
    metadata: dict[str, str] | None = None
    # nightowl's additions, defaults for the lines that do not set their own:
    priority: int | None = Field(default=None, ge=0, le=9)
    window: str | None = Field(default=None, max_length=40)
    not_before: datetime | None = None
    webhook_url: AnyHttpUrl | None = None


class BatchOut(BaseModel):
    """The OpenAI batch object; timestamps are Unix seconds, as there."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: dict[str, Any] | None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: dict[str, int]
    metadata: dict[str, str] | None
    retry_of: str | None
    schedule_id: str | None
    priority: int | None
    window: str | None
    not_before: int | None
    webhook_url: str | None

    @classmethod
    def of(cls, row: Batch, counts: dict[str, int]) -> BatchOut:
        return cls(
            id=row.id,
            endpoint=row.endpoint,
            errors=row.errors,
            input_file_id=row.input_file_id,
            completion_window=row.completion_window,
            status=row.status,
            output_file_id=row.output_file_id,
            error_file_id=row.error_file_id,
            created_at=int(row.created_at.timestamp()),
            in_progress_at=_unix(row.in_progress_at),
            expires_at=int(row.expires_at.timestamp()),
            finalizing_at=_unix(row.finalizing_at),
            completed_at=_unix(row.completed_at),
            failed_at=_unix(row.failed_at),
            expired_at=_unix(row.expired_at),
            cancelling_at=_unix(row.cancelling_at),
            cancelled_at=_unix(row.cancelled_at),
            request_counts=counts,
            metadata=row.batch_metadata,
            retry_of=row.retry_of,
            schedule_id=row.schedule_id,
            priority=row.priority,
            window=row.window,
            not_before=_unix(row.not_before),
            webhook_url=row.webhook_url,
        )


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchOut]
    has_more: bool
    last_id: str | None


class WebhookSecret(BaseModel):
    """The tenant's Standard Webhooks signing secret ("whsec_" + base64)."""

    secret: str


class WebhookDeliveryOut(BaseModel):
    """One webhook event for one URL and how its delivery went."""

    id: str
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
        return cls(
            id=row.id,
            event=row.event,
            object_id=row.object_id,
            url=row.url,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        )


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryOut]
    has_more: bool
    last_id: str | None


class ScheduleOut(BaseModel):
    """A schedule; `next_slot` is when it fires next (None while paused)."""

    id: str
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

    @classmethod
    def of(cls, row: Schedule, next_slot: datetime | None) -> ScheduleOut:
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            cron=row.cron,
            timezone=row.timezone,
            window=row.window,
            source=row.source,
            filter=row.filter,
            template=row.template,
            completion_window=row.completion_window,
            webhook_url=row.webhook_url,
            created_at=row.created_at,
            updated_at=row.updated_at,
            next_slot=next_slot,
        )


class ScheduleList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ScheduleOut]
    has_more: bool
    last_id: str | None


class FiringOut(BaseModel):
    """One (schedule, slot): `running`, then `submitted` (with its batch), `empty` or `failed`."""

    id: str
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
        return cls(
            id=row.id,
            schedule_id=row.schedule_id,
            slot=row.slot,
            status=row.status,
            objects_listed=row.objects_listed,
            objects_new=row.objects_new,
            objects_skipped=skipped,
            batch_id=row.batch_id,
            error=row.error_message,
            created_at=row.created_at,
        )


class FiringList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FiringOut]
    has_more: bool
    last_id: str | None
