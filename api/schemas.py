"""Pydantic models of the REST contract (DESIGN.md): what clients send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from core.db.models import File, Job


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: `{"error": {"code", "message"}}`."""

    error: ErrorBody


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


class JobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: str | None = Field(default=None, max_length=64)
    url: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _one_source(self) -> JobInput:
        if (self.file_id is None) == (self.url is None):
            raise ValueError("give exactly one of input.file_id and input.url")
        return self


class JobCreate(BaseModel):
    """`POST /v1/jobs`: `params` are checked against the kind's own model."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40)
    input: JobInput
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=5, ge=0, le=9)
    not_before: datetime | None = None
    webhook_url: AnyHttpUrl | None = None


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
        )


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    has_more: bool
    last_id: str | None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
