"""`/v1/jobs` models. The request models live with job creation, in `core.jobs`: batch lines and
schedule firings create jobs from the same spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from api.pagination import Cursor, Page
from api.schemas import ApiObject, ErrorBody
from core.db.models import Job
from core.jobs import JobCreate, JobInput

__all__ = ["JobCreate", "JobInput", "JobList", "JobOut", "JobQuery", "Progress"]
JobStatus = Literal["scheduled", "queued", "running", "succeeded", "failed", "cancelled", "expired"]


class JobQuery(Cursor):
    """`GET /v1/jobs`: a page of the caller's jobs, optionally of one status, kind or batch."""

    status: JobStatus | None = None
    kind: str | None = None
    batch_id: str | None = None


class Progress(BaseModel):
    done: int
    total: int


class JobOut(ApiObject):
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
        """The job as the API shows it; `usage` is the live usage of a job still running."""
        error = (
            ErrorBody(code=row.error_code, message=row.error_message or "")
            if row.error_code
            else None
        )
        return cls.from_row(
            row,
            input=row.spec.get("input", {}),
            params=row.spec.get("params", {}),
            progress=Progress(done=row.chunks_done, total=row.chunks_total),
            error=error,
            usage=row.usage if row.usage is not None else usage,
            artifacts=sorted((row.artifacts or {}).keys()),
        )


class JobList(Page[JobOut]):
    pass
