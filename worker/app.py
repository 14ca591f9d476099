"""The Celery app of the workers: `celery -A worker.app worker --pool solo -Q infer` on a Mac.

Tasks are thin adapters: bind the log context, call the plain stage function. Resources (and,
for processes that consume `infer`, the model) are made in `worker_process_init`, once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.signals import worker_process_init

from core.errors import EngineError
from core.logging import bound_context, configure_logging, get_logger
from core.queue import (
    BATCH_TASK,
    FINALIZE_TASK,
    INFER_QUEUE,
    INFER_TASK,
    PLAN_TASK,
    RECONCILE_TASK,
    WEBHOOK_TASK,
    CeleryDispatcher,
    make_celery,
)
from core.settings import Settings
from worker.batches import refresh_batch_step
from worker.context import WorkerContext
from worker.host import infer_delivery
from worker.reconcile import reconcile as reconcile_pass
from worker.stages import finalize_job, plan_job
from worker.webhooks import deliver_webhook

settings = Settings()
app = make_celery(settings)
_context: WorkerContext | None = None
log = get_logger("worker")


def context() -> WorkerContext:
    """This process's worker context, made on first use if the init signal did not run."""
    global _context
    if _context is None:
        _context = WorkerContext.create(settings, CeleryDispatcher(app, settings))
    return _context


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    configure_logging(settings)
    ctx = context()
    queues = {q.name for q in app.amqp.queues.consume_from.values()} if app.amqp.queues else set()
    if INFER_QUEUE in queues:
        try:
            engine = ctx.engine()
        except EngineError as exc:
            # Refuse to start: a model host that cannot load its model must not take infer work.
            log.error("worker.model.refused", error=exc.message)
            print(f"nightowl worker: cannot load the model: {exc.message}", file=sys.stderr)
            os._exit(3)
        log.info("worker.model.loaded", model=engine.model_id, drafter=engine.draft_model_id)


def _run_stage(task: Task, stage: Callable[[WorkerContext, str], object], object_id: str) -> None:
    """Run `stage` for the message's id, with the delivery (task id, redelivered) in the log."""
    redelivered = bool(task.request.delivery_info.get("redelivered"))
    with bound_context(task_id=task.request.id, redelivered=redelivered):
        stage(context(), object_id)


@app.task(name=PLAN_TASK, bind=True)
def plan(self: Task, job_id: str) -> None:
    """Plan a queued job into chunks."""
    _run_stage(self, plan_job, job_id)


@app.task(name=INFER_TASK, bind=True)
def infer(self: Task, chunk_id: str) -> None:
    """Run one chunk on the model."""
    _run_stage(self, infer_delivery, chunk_id)


@app.task(name=FINALIZE_TASK, bind=True)
def finalize(self: Task, job_id: str) -> None:
    """Merge a job's chunk outputs into its result."""
    _run_stage(self, finalize_job, job_id)


@app.task(name=BATCH_TASK, bind=True)
def batch(self: Task, batch_id: str) -> None:
    """Check a batch whose requests may all be done."""
    _run_stage(self, refresh_batch_step, batch_id)


@app.task(name=WEBHOOK_TASK, bind=True)
def webhook(self: Task, delivery_id: str) -> None:
    """Make one attempt at a webhook delivery."""
    _run_stage(self, deliver_webhook, delivery_id)


@app.task(name=RECONCILE_TASK)
def reconcile() -> int:
    return reconcile_pass(context()).total
