"""The per-tenant cap on unfinished work: `tenant_max_queued_jobs` jobs not yet in a final state.

Counted in SQL at submission (the row is the truth), for one job or for a whole batch at once,
so a batch is refused before any of its jobs is made. Two submissions racing at the cap can both
pass; the cap is a guard against runaway clients, not an exact ledger.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Job
from core.errors import QueueFull
from core.settings import Settings
from core.state import TERMINAL


def unfinished_jobs(session: Session, tenant_id: str) -> int:
    """How many of the tenant's jobs are scheduled, queued or running."""
    query = select(func.count()).where(Job.tenant_id == tenant_id, Job.status.not_in(TERMINAL))
    return int(session.scalar(query) or 0)


def check_queue_quota(session: Session, settings: Settings, tenant_id: str, adding: int) -> None:
    """Raise QueueFull when `adding` more jobs would pass the tenant's cap."""
    cap = settings.tenant_max_queued_jobs
    current = unfinished_jobs(session, tenant_id)
    if current + adding > cap:
        raise QueueFull(
            f"the tenant has {current} unfinished jobs and may have at most {cap}; "
            f"{adding} more would pass the cap; retry when some have finished"
        )
