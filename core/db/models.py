"""SQLAlchemy 2.0 models: tenants, API keys, files, jobs and chunks.

Every row that a user can name carries its tenant. Job and chunk rows hold the state machine of
`notes/reliability.md`: a claim is a conditional UPDATE that bumps `attempt` and sets
`lease_until`; later writes name the attempt and are refused when it is stale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention Alembic can diff."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), JsonDict: JSON()}


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Tenant(_Timestamps, Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Standard Webhooks signing secret ("whsec_" + base64), made on first use.
    webhook_secret: Mapped[str | None] = mapped_column(String(80))


class ApiKey(_Timestamps, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None]


class File(_Timestamps, Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))


class Batch(_Timestamps, Base):
    """An OpenAI-style batch: one JSONL file of job requests, run and reported together."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    endpoint: Mapped[str] = mapped_column(String(40))
    input_file_id: Mapped[str] = mapped_column(ForeignKey("files.id"))
    completion_window: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime]
    batch_metadata: Mapped[JsonDict | None]
    errors: Mapped[JsonDict | None]
    request_total: Mapped[int] = mapped_column(Integer, default=0)
    output_file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    error_file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    retry_of: Mapped[str | None] = mapped_column(String(40))
    schedule_id: Mapped[str | None] = mapped_column(String(40), index=True)
    priority: Mapped[int | None] = mapped_column(Integer)
    window: Mapped[str | None] = mapped_column(String(40))
    not_before: Mapped[datetime | None]
    webhook_url: Mapped[str | None] = mapped_column(Text)
    in_progress_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class Job(_Timestamps, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_jobs_status_enqueued_at", "status", "enqueued_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    # Within `running`: planning -> inferring -> finalizing.
    stage: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    input_file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"), index=True)
    custom_id: Mapped[str | None] = mapped_column(String(255))
    spec: Mapped[JsonDict]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None]
    # A named window of Settings.windows: the job starts, and its chunks start, only while open.
    window: Mapped[str | None] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # Claims of the current stage only: the attempts cap applies per stage; `attempt` never resets.
    stage_attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    usage: Mapped[JsonDict | None]
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    result_key: Mapped[str | None] = mapped_column(String(255))
    artifacts: Mapped[JsonDict | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Chunk(_Timestamps, Base):
    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("job_id", "index"),
        Index("ix_chunks_status_enqueued_at", "status", "enqueued_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    spec: Mapped[JsonDict]
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    output: Mapped[JsonDict | None]
    usage: Mapped[JsonDict | None]
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WebhookDelivery(_Timestamps, Base):
    """One event for one URL (Standard Webhooks), recorded once, retried until delivered or dropped.

    `id` is the `webhook-id` header, the same on every attempt, so receivers can de-duplicate.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("object_id", "event"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[JsonDict]
    # pending -> delivered | failed
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class Schedule(_Timestamps, Base):
    """Recurring work: at each slot (cron or window opening) new source objects become a batch."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    # active | paused | deleted (deleted rows keep their firings' history; the API hides them)
    status: Mapped[str] = mapped_column(String(20))
    cron: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    window: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[JsonDict]
    filter: Mapped[JsonDict]
    template: Mapped[JsonDict]
    completion_window: Mapped[str] = mapped_column(String(20))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # Slots at or before this instant are not fired (set at creation and on resume).
    fire_after: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ScheduleFiring(_Timestamps, Base):
    """One (schedule, slot): the unique key makes a slot fire once however many beats run."""

    __tablename__ = "schedule_firings"
    __table_args__ = (UniqueConstraint("schedule_id", "slot"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    slot: Mapped[datetime]
    # submitted | empty | failed
    status: Mapped[str] = mapped_column(String(20))
    objects_listed: Mapped[int] = mapped_column(Integer, default=0)
    objects_new: Mapped[int] = mapped_column(Integer, default=0)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    error_message: Mapped[str | None] = mapped_column(Text)


class ScheduleObject(_Timestamps, Base):
    """A source object a schedule has taken, by key and version (ETag or checksum)."""

    __tablename__ = "schedule_objects"
    __table_args__ = (UniqueConstraint("schedule_id", "key", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id"))
    key: Mapped[str] = mapped_column(String(1024))
    version: Mapped[str] = mapped_column(String(128))
    firing_id: Mapped[str] = mapped_column(ForeignKey("schedule_firings.id"))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
