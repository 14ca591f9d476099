"""Beat's part in schedules: fire the slots that are due (the work is `core.schedule_firing`)."""

from __future__ import annotations

from datetime import datetime

from core.schedule_firing import fire_due
from worker.context import WorkerContext


def fire_schedules(ctx: WorkerContext, now: datetime | None = None) -> list[str]:
    """Fire every schedule whose latest slot has not fired; returns the ids of the new firings."""
    return fire_due(ctx.db, ctx.store, ctx.dispatcher, ctx.settings, now or ctx.clock())
