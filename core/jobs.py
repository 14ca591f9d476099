"""Job requests: the spec a client sends (`POST /v1/jobs`, a batch line, a schedule's template),
checked against its kind, and the job row made from it (idempotently).

The API, batches and the schedules run by beat all create jobs through `create_job`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import on_commit
from core.db.models import Job
from core.db.types import new_id, utcnow
from core.errors import Conflict, HostUnresolved, Unprocessable, UnsupportedMedia
from core.files import get_file
from core.kinds import KINDS
from core.netguard import check_url
from core.queue import Dispatcher
from core.quota import check_queue_quota
from core.settings import Settings
from core.windows import StartGate

MAX_URL_LENGTH = 2048


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
    # A named window of the settings (core/windows.py): the job runs only while it is open.
    window: str | None = Field(default=None, max_length=40)
    webhook_url: AnyHttpUrl | None = None


def _request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_params(body: JobCreate) -> dict[str, Any]:
    kind = KINDS.get(body.kind)
    if kind is None:
        raise Unprocessable(f"unknown job kind {body.kind!r}; known: {', '.join(sorted(KINDS))}")
    try:
        params = kind.params.model_validate(body.params)
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(["params", *(str(p) for p in e["loc"])]) + f": {e['msg']}"
            for e in exc.errors()
        )
        raise Unprocessable(problems) from None
    return params.model_dump(mode="json", exclude_none=True)


def unknown_window(settings: Settings, name: str) -> str:
    """The message for a window name the settings do not define."""
    known = ", ".join(sorted(settings.window_table)) or "none are configured (NIGHTOWL_WINDOWS)"
    return f"unknown window {name!r}; known: {known}"


def checked_input_url(settings: Settings, url: str) -> str:
    """An input URL the SSRF guard accepts (422 `fetch_blocked` otherwise).

    A host that does not resolve now is accepted: the worker resolves, checks and pins the
    address again when it fetches, and only that check protects anything; this one refuses
    internal and malformed addresses early. A job for tonight, or a batch line, should not fail
    on a DNS hiccup at submission (the fetch ends `fetch_failed` if the host never resolves).
    """
    if len(url) > MAX_URL_LENGTH:
        raise Unprocessable(f"input.url is longer than {MAX_URL_LENGTH} characters")
    with contextlib.suppress(HostUnresolved):
        check_url(url, settings.fetch_allow_networks)
    return url


def create_job(
    session: Session,
    dispatcher: Dispatcher,
    settings: Settings,
    tenant_id: str,
    body: JobCreate,
    idempotency_key: str | None,
    *,
    publish: bool = True,
) -> tuple[Job, bool]:
    """Insert a job and enqueue its planning after commit; returns (job, created).

    The same Idempotency-Key with the same body returns the job made the first time; with
    another body it is a Conflict. A job with a future `not_before`, or a window that is closed
    now, is `scheduled` (the reconciler releases it). `publish=False` is for batch lines: they
    wait in SQL (queued, `enqueued_at` unset) until `core.fairness.admit` hands them out.
    """
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        existing = session.scalar(
            select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key)
        )
        if existing is not None:
            if existing.request_hash != request_hash:
                raise Conflict("Idempotency-Key was already used with a different request body")
            return existing, False
    if publish:
        # Batch lines (publish=False) are counted once, for the whole batch, by create_batch.
        check_queue_quota(session, settings, tenant_id, adding=1)
    params = checked_params(body)
    if body.webhook_url is not None:
        # Checked again at every delivery attempt: DNS may have changed since.
        check_url(str(body.webhook_url), settings.fetch_allow_networks)
    source: dict[str, str]
    input_file_id: str | None
    if body.input.url is not None:
        # The worker fetches it when the job is planned (worker/fetch.py) and sniffs its type then.
        source, input_file_id = {"url": checked_input_url(settings, str(body.input.url))}, None
    else:
        assert body.input.file_id is not None
        file = get_file(session, tenant_id, body.input.file_id)
        if file.content_type not in KINDS[body.kind].content_types:
            raise UnsupportedMedia(f"{body.kind} cannot read {file.content_type} ({file.filename})")
        source, input_file_id = {"file_id": file.id}, file.id
    now = utcnow()
    gate = StartGate.at(settings.window_table, now)
    if gate.unknown(body.window):
        raise Unprocessable(unknown_window(settings, body.window or ""))
    scheduled = not gate.allows(body.window, body.not_before)
    job = Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        kind=body.kind,
        status="scheduled" if scheduled else "queued",
        priority=body.priority,
        input_file_id=input_file_id,
        spec={"input": source, "params": params},
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        not_before=body.not_before,
        window=body.window,
        attempt=0,
        chunks_total=0,
        chunks_done=0,
        enqueued_at=None if scheduled or not publish else now,
        updated_at=now,
    )
    try:
        # A savepoint: a concurrent request with the same Idempotency-Key may win the insert.
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        if idempotency_key is None:
            raise
        return create_job(
            session, dispatcher, settings, tenant_id, body, idempotency_key, publish=publish
        )
    if publish and not scheduled:
        on_commit(session, lambda: dispatcher.plan(job.id, job.priority))
    return job, True
