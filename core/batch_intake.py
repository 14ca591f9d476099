"""Batch intake (OpenAI Batch API shape): validate every line of a JSONL file, then make jobs.

Validation runs before any work starts: every bad line is reported with its line number
(malformed JSON, missing or duplicate `custom_id`, wrong method or url, unknown kind, bad params,
missing input), and one bad line fails the whole batch with no job created. A valid batch creates
one job per line in the same transaction. Lines take the batch's priority, window and
`not_before` unless they set their own; the batch's priority defaults below single jobs'. The jobs
are not published at once: they wait in SQL and `core.fairness.admit` hands them to the broker a
few at a time, fairly across tenants. Used by the API and by schedules (run by beat).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches import OPEN, parse_window, request_counts
from core.db.models import Batch, Job
from core.db.types import new_id, utcnow
from core.errors import Conflict, NightowlError, TooLarge, Unprocessable
from core.fairness import admit
from core.files import get_file, store_file
from core.jobs import JobCreate, create_job, unknown_window
from core.netguard import check_url
from core.queue import Dispatcher
from core.quota import check_queue_quota
from core.settings import Settings
from core.storage import ObjectStore
from core.webhooks import emit_batch_event

ENDPOINT = "/v1/jobs"


def _error(line: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "line": line, "param": param}


def _parse_line(number: int, raw: bytes, seen: set[str]) -> tuple[str, JobCreate] | dict[str, Any]:
    try:
        item = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(number, "invalid_json", f"line {number} is not valid JSON: {exc}")
    if not isinstance(item, dict):
        return _error(number, "invalid_request", f"line {number} is not a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 255:
        return _error(number, "missing_custom_id", "custom_id must be a string", "custom_id")
    if custom_id in seen:
        return _error(
            number, "duplicate_custom_id", f"custom_id {custom_id!r} is repeated", "custom_id"
        )
    seen.add(custom_id)
    if item.get("method") != "POST" or item.get("url") != ENDPOINT:
        return _error(
            number, "invalid_url", f'each line must be "method": "POST", "url": "{ENDPOINT}"', "url"
        )
    try:
        body = JobCreate.model_validate(item.get("body"))
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or "body"
        return _error(number, "invalid_request", f"body.{param}: {first['msg']}", f"body.{param}")
    return custom_id, body


@dataclass(frozen=True)
class BatchRequest:
    """What `POST /v1/batches` (or a schedule's firing) asks for.

    `priority`, `window`, `not_before` and `webhook_url` are nightowl's additions to the OpenAI
    shape; the first three apply to the lines that do not set their own, the webhook gets the
    batch's events.
    """

    input_file_id: str
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    priority: int | None = None
    window: str | None = None
    not_before: datetime | None = None
    webhook_url: str | None = None


def create_batch(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    tenant_id: str,
    request: BatchRequest,
    *,
    retry_of: str | None = None,
    schedule_id: str | None = None,
) -> Batch:
    """Validate the input file's lines and create the batch (failed, or in progress with jobs)."""
    if len(request.metadata or {}) > 16:
        raise Unprocessable("metadata holds at most 16 keys")
    if request.window is not None and request.window not in settings.window_table:
        raise Unprocessable(unknown_window(settings, request.window))
    lifetime = parse_window(request.completion_window)
    if request.webhook_url is not None:
        check_url(request.webhook_url, settings.fetch_allow_networks)
    file = get_file(session, tenant_id, request.input_file_id)
    if file.bytes > settings.batch_max_bytes:
        raise TooLarge(
            f"the input file has {file.bytes} bytes; the limit is {settings.batch_max_bytes}"
        )
    now = utcnow()
    batch = Batch(
        id=new_id("batch"),
        tenant_id=tenant_id,
        status="validating",
        endpoint=ENDPOINT,
        input_file_id=file.id,
        completion_window=request.completion_window,
        expires_at=now + lifetime,
        batch_metadata=request.metadata,
        request_total=0,
        retry_of=retry_of,
        schedule_id=schedule_id,
        priority=request.priority,
        window=request.window,
        not_before=request.not_before,
        webhook_url=request.webhook_url,
    )
    session.add(batch)
    session.flush()
    lines = store.get_bytes(file.storage_key).splitlines()
    numbered = [(n, raw) for n, raw in enumerate(lines, 1) if raw.strip()]
    if len(numbered) > settings.batch_max_lines:
        raise TooLarge(
            f"the input file has {len(numbered)} lines; the limit is {settings.batch_max_lines}"
        )
    # Before any job is made, so a batch over the cap leaves nothing behind.
    check_queue_quota(session, settings, batch.tenant_id, adding=len(numbered))
    errors = _create_jobs(session, dispatcher, settings, batch, numbered)
    if not numbered:
        errors = [_error(0, "empty_file", "the input file has no requests")]
    if errors:
        batch.status, batch.failed_at = "failed", now
        batch.errors = {"object": "list", "data": errors}
        session.flush()
        emit_batch_event(session, dispatcher, batch, request_counts(session, batch))
        return batch
    batch.status, batch.in_progress_at, batch.request_total = "in_progress", now, len(numbered)
    session.flush()
    admit(session, dispatcher, settings)
    return batch


def _line_defaults(settings: Settings, batch: Batch, body: JobCreate) -> JobCreate:
    """The batch's settings for what the line leaves out (lines run below single jobs).

    The batch's webhook is not passed on: it gets the batch's events, and a line that wants its
    job's events sets its own `webhook_url` (a 10,000-line batch should not mean 10,000 calls).
    """
    given = body.model_fields_set
    defaults: dict[str, Any] = {}
    if "priority" not in given:
        defaults["priority"] = settings.batch_priority if batch.priority is None else batch.priority
    if "window" not in given and batch.window is not None:
        defaults["window"] = batch.window
    if "not_before" not in given and batch.not_before is not None:
        defaults["not_before"] = batch.not_before
    return body.model_copy(update=defaults) if defaults else body


def _create_jobs(
    session: Session,
    dispatcher: Dispatcher,
    settings: Settings,
    batch: Batch,
    numbered: list[tuple[int, bytes]],
) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    savepoint = session.begin_nested()
    for number, raw in numbered:
        parsed = _parse_line(number, raw, seen)
        if isinstance(parsed, dict):
            errors.append(parsed)
            continue
        custom_id, body = parsed
        body = _line_defaults(settings, batch, body)
        try:
            job, _ = create_job(
                session, dispatcher, settings, batch.tenant_id, body, None, publish=False
            )
        except NightowlError as exc:
            errors.append(_error(number, exc.code, exc.message))
            continue
        job.batch_id, job.custom_id = batch.id, custom_id
    if errors:
        savepoint.rollback()
        return errors
    savepoint.commit()
    return errors


def retry_batch(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    old: Batch,
) -> Batch:
    """A new batch over the failed and expired lines of a finished batch, linked to it."""
    if old.status in OPEN or old.status == "validating":
        raise Conflict(f"batch {old.id} has not finished")
    jobs = session.scalars(
        select(Job)
        .where(Job.batch_id == old.id, Job.status.in_(("failed", "expired")))
        .order_by(Job.id)
    ).all()
    if not jobs:
        raise Conflict(f"batch {old.id} has no failed or expired requests to retry")
    lines = [
        {
            "custom_id": job.custom_id,
            "method": "POST",
            "url": ENDPOINT,
            "body": {
                "kind": job.kind,
                "input": job.spec["input"],
                "params": job.spec["params"],
                "priority": job.priority,
            },
        }
        for job in jobs
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = store_file(
        session, store, old.tenant_id, f"{old.id}_retry.jsonl", data, "application/jsonl"
    )
    request = BatchRequest(
        input_file_id=file.id,
        completion_window=old.completion_window,
        metadata=old.batch_metadata,
        priority=old.priority,
        webhook_url=old.webhook_url,
    )
    return create_batch(
        session, store, dispatcher, settings, old.tenant_id, request, retry_of=old.id
    )
