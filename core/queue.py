"""The Celery app and the dispatcher that publishes work: messages carry ids, never objects.

Settings follow `notes/reliability.md`: JSON only, late acks, reject on worker loss, prefetch 1,
a visibility timeout well above the longest chunk, and an expiry on every message. Queue `ingest`
takes `plan`, `finalize`, `batch` and webhook attempts (CPU), queue `infer` takes model work (the
Macs). The API and the reconciler publish through a `Dispatcher`; `nightowl run` uses an
in-process one instead of Redis.
"""

from __future__ import annotations

from typing import Protocol

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings

PLAN_TASK = "nightowl.plan"
INFER_TASK = "nightowl.infer"
FINALIZE_TASK = "nightowl.finalize"
RECONCILE_TASK = "nightowl.reconcile"
BATCH_TASK = "nightowl.batch"
WEBHOOK_TASK = "nightowl.webhook"
INGEST_QUEUE = "ingest"
INFER_QUEUE = "infer"
QUEUES = (INGEST_QUEUE, INFER_QUEUE)
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5  # single jobs; batch lines default lower (Settings.batch_priority)


class Dispatcher(Protocol):
    """Publishes the next step of a job; called only after the rows it names are committed."""

    def plan(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        """Ask for `job_id` to be planned into chunks."""

    def infer(self, chunk_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        """Ask for `chunk_id` to be run on the model."""

    def finalize(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        """Ask for `job_id`'s chunk outputs to be merged into its result."""

    def batch(self, batch_id: str) -> None:
        """Ask for `batch_id` to be checked: finished, expired or cancelled batches get files."""

    def webhook(self, delivery_id: str) -> None:
        """Ask for one attempt at the webhook delivery `delivery_id`."""


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for nightowl's reliability rules."""
    if not settings.redis_url:
        raise ValueError("NIGHTOWL_REDIS_URL is required for the queue")
    transport = {
        # One Redis list per priority level, served highest first (kombu priority queues).
        "priority_steps": list(range(MAX_PRIORITY + 1)),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": settings.visibility_timeout_seconds,
        # Sweep for unacked messages past the visibility timeout every vt/5 s (1-10 s); kombu's
        # default (every 10 s, scanning only every 10th time) takes ~100 s to redeliver them.
        "unacked_restore_interval": min(max(settings.visibility_timeout_seconds // 5, 1), 10),
        "unacked_restore_throttle": 1,
        "health_check_interval": 10,
        "socket_keepalive": True,
        "retry_on_timeout": True,
    }
    app = Celery("nightowl", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        # Each queue its own exchange and key, so the bindings declared in Redis never overlap
        # (by default both queues would be bound to exchange `ingest` with key `ingest`).
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_default_queue=INGEST_QUEUE,
        task_default_exchange=INGEST_QUEUE,
        task_default_routing_key=INGEST_QUEUE,
        task_routes={
            PLAN_TASK: {"queue": INGEST_QUEUE},
            FINALIZE_TASK: {"queue": INGEST_QUEUE},
            RECONCILE_TASK: {"queue": INGEST_QUEUE},
            BATCH_TASK: {"queue": INGEST_QUEUE},
            WEBHOOK_TASK: {"queue": INGEST_QUEUE},
            INFER_TASK: {"queue": INFER_QUEUE},
        },
        beat_schedule={
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval_seconds,
                "options": {"expires": settings.reconcile_interval_seconds},
            }
        },
        timezone="UTC",
    )
    return app


class CeleryDispatcher:
    """Publishes task messages to Redis; every message expires."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.expires = settings.message_expiry_seconds

    def _send(self, name: str, object_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        # kombu's Redis transport serves priority 0 first; ours is 0-9 with 9 the most urgent.
        self.app.send_task(
            name, args=[object_id], expires=self.expires, priority=MAX_PRIORITY - priority
        )

    def plan(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._send(PLAN_TASK, job_id, priority)

    def infer(self, chunk_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._send(INFER_TASK, chunk_id, priority)

    def finalize(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._send(FINALIZE_TASK, job_id, priority)

    def batch(self, batch_id: str) -> None:
        self._send(BATCH_TASK, batch_id)

    def webhook(self, delivery_id: str) -> None:
        self._send(WEBHOOK_TASK, delivery_id)

    def check(self) -> None:
        """Raise ServiceUnavailable unless the broker answers a ping."""
        from core.errors import ServiceUnavailable

        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                conn.default_channel.client.ping()
        except Exception as exc:
            raise ServiceUnavailable(f"broker unavailable: {exc}") from exc
