"""The in-process dispatcher of `nightowl run`: the same stage functions, no broker.

Messages go to a local queue that `drain()` runs in order until nothing is left, so a job runs
to its end in this process exactly as a worker fleet would run it, one message at a time.
Priorities are ignored here: there is only ever the one job of `nightowl run` (or a test's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from core.queue import DEFAULT_PRIORITY
from worker.context import WorkerContext


class InlineDispatcher:
    """A complete `Dispatcher` that runs the stages in this process when drained."""

    def __init__(self) -> None:
        self._pending: deque[tuple[str, str]] = deque()
        self.context: WorkerContext | None = None

    def plan(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._pending.append(("plan", job_id))

    def infer(self, chunk_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._pending.append(("infer", chunk_id))

    def finalize(self, job_id: str, priority: int = DEFAULT_PRIORITY) -> None:
        self._pending.append(("finalize", job_id))

    def batch(self, batch_id: str) -> None:
        self._pending.append(("batch", batch_id))

    def webhook(self, delivery_id: str) -> None:
        self._pending.append(("webhook", delivery_id))

    def pending(self) -> list[tuple[str, str]]:
        """The queued messages as (stage, id), oldest first, without running them."""
        return list(self._pending)

    def discard(self) -> list[tuple[str, str]]:
        """Drop the queued messages unrun, as a broker that lost them would; returns them."""
        dropped = self.pending()
        self._pending.clear()
        return dropped

    def drain(self, on_step: Callable[[str, str], None] | None = None) -> int:
        """Run queued stages (and those they queue) until none is left; returns how many ran."""
        from worker.batches import refresh_batch_step
        from worker.host import infer_delivery
        from worker.stages import finalize_job, plan_job
        from worker.webhooks import deliver_webhook

        assert self.context is not None, "bind a WorkerContext first"
        steps: dict[str, Callable[[WorkerContext, str], object]] = {
            "plan": plan_job,
            "infer": infer_delivery,
            "finalize": finalize_job,
            "batch": refresh_batch_step,
            "webhook": deliver_webhook,
        }
        ran = 0
        while self._pending:
            step, object_id = self._pending.popleft()
            steps[step](self.context, object_id)
            ran += 1
            if on_step is not None:
                on_step(step, object_id)
        return ran
