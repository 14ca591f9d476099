"""Fair dispatch of bulk work: batch jobs wait in SQL and are handed out a few at a time.

A batch's jobs are created `queued` with `enqueued_at` unset ("held"): no broker message yet.
`admit` keeps at most `Settings.bulk_in_flight` batch jobs in flight (a message sent, or
running) and fills free places round-robin over tenants: the tenant with the fewest jobs in
flight goes next (ties: the one given a place least recently), so one tenant's 10,000-line
batch gets one place in turn with another tenant's 5-line batch instead of 10,000 places ahead
of it. Within a tenant, higher priority
first, then submission order. Priority never crosses tenants (a tenant could otherwise buy its
way past the others by marking everything 9); single jobs are not held at all, and the broker's
priority queues put them ahead of bulk work.

Callers: batch creation, the `batch` task that runs whenever a batch job ends, and every
reconciler pass. Two callers at the same time may together admit a few more than the limit
(each place is taken by a conditional UPDATE, so no job is ever sent twice); the limit is a
target for keeping the broker shallow, not a hard cap.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import on_commit
from core.db.models import Job
from core.db.types import utcnow
from core.queue import Dispatcher
from core.settings import Settings
from core.state import HELD as _HELD
from core.state import admit_held

_BULK = Job.batch_id.is_not(None)
_NEVER = datetime.min.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def in_flight(session: Session) -> Counter[str]:
    """Batch jobs sent to the broker or running, by tenant."""
    moving = (Job.status == "running") | ((Job.status == "queued") & Job.enqueued_at.is_not(None))
    rows = session.execute(
        select(Job.tenant_id, func.count()).where(_BULK, moving).group_by(Job.tenant_id)
    )
    return Counter({tenant: count for tenant, count in rows})


def admit(
    session: Session, dispatcher: Dispatcher, settings: Settings, now: datetime | None = None
) -> list[str]:
    """Hand held batch jobs to the broker, fairly, up to the in-flight limit; returns their ids.

    Messages go out after the caller's transaction commits.
    """
    busy = in_flight(session)
    free = settings.bulk_in_flight - sum(busy.values())
    if free <= 0:
        return []
    tenants = list(session.scalars(select(Job.tenant_id).where(_BULK, _HELD).distinct()))
    waiting = {
        tenant: list(
            session.execute(
                select(Job.id, Job.priority)
                .where(_BULK, _HELD, Job.tenant_id == tenant)
                .order_by(Job.priority.desc(), Job.id)
                .limit(free)
            )
        )
        for tenant in tenants
    }
    # When a tenant was last given a place (never: first), to break ties in turn.
    served: dict[str, datetime] = {
        tenant: when or _NEVER
        for tenant, when in session.execute(
            select(Job.tenant_id, func.max(Job.enqueued_at))
            .where(_BULK, Job.tenant_id.in_(tenants), Job.enqueued_at.is_not(None))
            .group_by(Job.tenant_id)
        )
    }
    admitted: list[tuple[str, int]] = []
    now = max([now or utcnow(), *served.values()])
    while free > 0 and any(waiting.values()):
        # The tenant with the fewest in flight; ties go to the one served least recently.
        tenant = min(
            (t for t in waiting if waiting[t]),
            key=lambda t: (busy[t], served.get(t, _NEVER), waiting[t][0].id),
        )
        job_id, priority = waiting[tenant].pop(0)
        if not admit_held(session, job_id, now):
            continue  # another caller admitted it, or it was cancelled
        busy[tenant] += 1
        served[tenant] = now = now + _TICK  # later than any earlier place, for the next tie
        free -= 1
        admitted.append((job_id, priority))
    for job_id, priority in admitted:
        on_commit(session, partial(dispatcher.plan, job_id, priority))
    return [job_id for job_id, _ in admitted]
