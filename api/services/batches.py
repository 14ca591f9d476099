"""Batches (OpenAI Batch API shape): validate every line of a JSONL file, then run it as jobs.

Validation runs in the request, before any work starts: every bad line is reported with its
line number (malformed JSON, missing or duplicate `custom_id`, wrong method or url, unknown
kind, bad params, missing input), and one bad line fails the whole batch with no job created.
A valid batch creates one job per line (with the batch's lower default priority unless the line
sets one) in the same transaction, and publishes them after the commit.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import JobCreate
from api.services.files import get_file
from api.services.jobs import create_job
from core.batches import OPEN, parse_window
from core.db import on_commit
from core.db.models import Batch, Job
from core.db.types import new_id, utcnow
from core.errors import Conflict, NightowlError, NotFound, TooLarge, Unprocessable
from core.files import store_file
from core.queue import Dispatcher
from core.settings import Settings
from core.state import cancel_job
from core.storage import ObjectStore

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


def create_batch(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    tenant_id: str,
    input_file_id: str,
    completion_window: str,
    metadata: dict[str, str] | None,
    retry_of: str | None = None,
) -> Batch:
    """Validate the input file's lines and create the batch (failed, or in progress with jobs)."""
    if len(metadata or {}) > 16:
        raise Unprocessable("metadata holds at most 16 keys")
    window = parse_window(completion_window)
    file = get_file(session, tenant_id, input_file_id)
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
        completion_window=completion_window,
        expires_at=now + window,
        batch_metadata=metadata,
        request_total=0,
        retry_of=retry_of,
    )
    session.add(batch)
    session.flush()
    lines = store.get_bytes(file.storage_key).splitlines()
    numbered = [(n, raw) for n, raw in enumerate(lines, 1) if raw.strip()]
    if len(numbered) > settings.batch_max_lines:
        raise TooLarge(
            f"the input file has {len(numbered)} lines; the limit is {settings.batch_max_lines}"
        )
    errors, jobs = _create_jobs(session, dispatcher, settings, batch, numbered)
    if not numbered:
        errors = [_error(0, "empty_file", "the input file has no requests")]
    if errors:
        batch.status, batch.failed_at = "failed", now
        batch.errors = {"object": "list", "data": errors}
        session.flush()
        return batch
    batch.status, batch.in_progress_at, batch.request_total = "in_progress", now, len(numbered)
    session.flush()
    for job in jobs:
        if job.status == "queued":
            on_commit(session, partial(dispatcher.plan, job.id, job.priority))
    return batch


def _create_jobs(
    session: Session,
    dispatcher: Dispatcher,
    settings: Settings,
    batch: Batch,
    numbered: list[tuple[int, bytes]],
) -> tuple[list[dict[str, Any]], list[Job]]:
    errors: list[dict[str, Any]] = []
    jobs: list[Job] = []
    seen: set[str] = set()
    savepoint = session.begin_nested()
    for number, raw in numbered:
        parsed = _parse_line(number, raw, seen)
        if isinstance(parsed, dict):
            errors.append(parsed)
            continue
        custom_id, body = parsed
        if "priority" not in body.model_fields_set:  # lines run below single jobs by default
            body = body.model_copy(update={"priority": settings.batch_priority})
        try:
            job, _ = create_job(session, dispatcher, batch.tenant_id, body, None, publish=False)
        except NightowlError as exc:
            errors.append(_error(number, exc.code, exc.message))
            continue
        job.batch_id, job.custom_id = batch.id, custom_id
        jobs.append(job)
    if errors:
        savepoint.rollback()
        return errors, []
    savepoint.commit()
    return errors, jobs


def get_batch(session: Session, tenant_id: str, batch_id: str) -> Batch:
    """The tenant's batch; another tenant's id is NotFound."""
    batch = session.scalar(select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id))
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch


def list_batches(
    session: Session, tenant_id: str, limit: int, after: str | None
) -> tuple[list[Batch], bool]:
    """The tenant's batches, newest first, with a cursor."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if after:
        query = query.where(Batch.id < after)
    rows = list(session.scalars(query.order_by(Batch.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def cancel_batch(session: Session, dispatcher: Dispatcher, tenant_id: str, batch_id: str) -> Batch:
    """Stop a running batch: its unfinished jobs are cancelled, finished ones are kept."""
    batch = get_batch(session, tenant_id, batch_id)
    if batch.status == "cancelling" or batch.status == "cancelled":
        return batch
    if batch.status not in OPEN:
        raise Conflict(f"batch {batch_id} is already {batch.status}")
    batch.status, batch.cancelling_at = "cancelling", utcnow()
    for job in session.scalars(select(Job).where(Job.batch_id == batch.id)):
        cancel_job(session, job)
    session.flush()
    on_commit(session, partial(dispatcher.batch, batch.id))
    return batch


def retry_batch(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    tenant_id: str,
    batch_id: str,
) -> Batch:
    """A new batch over the failed and expired lines of a finished batch, linked to it."""
    old = get_batch(session, tenant_id, batch_id)
    if old.status in OPEN or old.status == "validating":
        raise Conflict(f"batch {batch_id} has not finished")
    jobs = session.scalars(
        select(Job)
        .where(Job.batch_id == old.id, Job.status.in_(("failed", "expired")))
        .order_by(Job.id)
    ).all()
    if not jobs:
        raise Conflict(f"batch {batch_id} has no failed or expired requests to retry")
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
    file = store_file(session, store, tenant_id, f"{old.id}_retry.jsonl", data, "application/jsonl")
    return create_batch(
        session,
        store,
        dispatcher,
        settings,
        tenant_id,
        file.id,
        old.completion_window,
        old.batch_metadata,
        retry_of=old.id,
    )
