"""`/v1/batches` models, as in the OpenAI Batch API (timestamps in Unix seconds, as there)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field

from api.pagination import Page
from api.schemas import ApiObject
from core.batch_intake import BatchRequest
from core.db.models import Batch


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

    def request(self) -> BatchRequest:
        """What `core.batch_intake` takes: these fields but the one possible `endpoint`."""
        fields = self.model_dump(exclude={"endpoint", "webhook_url"})
        webhook_url = str(self.webhook_url) if self.webhook_url else None
        return BatchRequest(**fields, webhook_url=webhook_url)


def _unix(moment: datetime | int) -> int:
    # A datetime from the row; already an int when FastAPI validates the dumped answer again.
    return int(moment.timestamp()) if isinstance(moment, datetime) else moment


# An instant as Unix seconds, as the OpenAI batch object has them.
UnixTime = Annotated[int, BeforeValidator(_unix)]


class BatchOut(ApiObject):
    """The OpenAI batch object; timestamps are Unix seconds, as there."""

    object: Literal["batch"] = "batch"
    endpoint: str
    errors: dict[str, Any] | None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: UnixTime
    in_progress_at: UnixTime | None
    expires_at: UnixTime
    finalizing_at: UnixTime | None
    completed_at: UnixTime | None
    failed_at: UnixTime | None
    expired_at: UnixTime | None
    cancelling_at: UnixTime | None
    cancelled_at: UnixTime | None
    request_counts: dict[str, int]
    metadata: dict[str, str] | None
    retry_of: str | None
    schedule_id: str | None
    priority: int | None
    window: str | None
    not_before: UnixTime | None
    webhook_url: str | None

    @classmethod
    def of(cls, row: Batch, counts: dict[str, int]) -> BatchOut:
        """The batch as the API shows it, with its request counts."""
        return cls.from_row(row, request_counts=counts, metadata=row.batch_metadata)


class BatchList(Page[BatchOut]):
    pass
