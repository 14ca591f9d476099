"""`nightowl run`: a job run in this process on the embedded default (SQLite + local folder).

It goes through the same service and stage functions as the distributed path; only the
dispatcher differs (in-process queue instead of Redis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from core.db.models import Job, Tenant
from core.db.types import new_id
from core.files import clean_filename, store_local_file
from core.jobs import JobCreate, create_job
from core.migrate import upgrade
from core.settings import Settings
from worker.context import WorkerContext
from worker.inline import InlineDispatcher

if TYPE_CHECKING:
    from worker.engine import Engine

LOCAL_TENANT = "local"


@dataclass
class LocalRun:
    """What `run_local` did: the job row as it ended, and its result if it succeeded."""

    job: Job
    result: dict[str, Any] | None
    artifacts: dict[str, str]
    storage_root: Path


def _local_tenant(ctx: WorkerContext) -> str:
    with ctx.db.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == LOCAL_TENANT))
        if tenant is None:
            tenant = Tenant(id=new_id("ten"), name=LOCAL_TENANT)
            session.add(tenant)
        return tenant.id


def run_local(
    settings: Settings,
    path: Path,
    kind: str,
    params: dict[str, Any],
    *,
    engine: Engine | None = None,
    show_progress: bool = True,
) -> LocalRun:
    """Run one job on `path` to its end in this process and return how it ended.

    `engine` is a model already loaded (the demo's); otherwise the settings' model is loaded.
    """
    upgrade(settings.sqlalchemy_url)
    dispatcher = InlineDispatcher()
    ctx = WorkerContext.create(settings, dispatcher, engine)
    dispatcher.context = ctx
    tenant_id = _local_tenant(ctx)
    with ctx.db.transaction() as session:
        name, cap = clean_filename(path.name), settings.max_upload_bytes
        file = store_local_file(session, ctx.store, tenant_id, path, name, cap)
        body = JobCreate.model_validate(
            {"kind": kind, "input": {"file_id": file.id}, "params": params}
        )
        job, _ = create_job(session, dispatcher, settings, tenant_id, body, None)
        job_id = job.id
    _drain_with_progress(ctx, dispatcher, job_id, show_progress)
    with ctx.db.transaction() as session:
        job = session.get_one(Job, job_id)
    result = None
    if job.status == "succeeded" and job.result_key:
        result = json.loads(ctx.store.get_bytes(job.result_key))
    root = settings.storage_dir.resolve()
    return LocalRun(job, result, dict(job.artifacts or {}), root)


def _drain_with_progress(
    ctx: WorkerContext, dispatcher: InlineDispatcher, job_id: str, show: bool
) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not show, transient=False) as progress:
        bar = progress.add_task(f"{job_id} planning", total=None)

        def on_step(step: str, _object_id: str) -> None:
            with ctx.db.transaction() as session:
                job = session.get_one(Job, job_id)
                progress.update(
                    bar,
                    description=f"{job_id} {job.stage or job.status}",
                    total=job.chunks_total or None,
                    completed=job.chunks_done,
                )

        dispatcher.drain(on_step)
