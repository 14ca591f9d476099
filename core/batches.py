"""What the API and the workers both know of batches: open statuses, completion windows, counts.

Finishing and expiring a batch (its output and error files) runs only in workers:
`worker/batches.py`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Batch, Job
from core.errors import Unprocessable

OPEN = ("in_progress", "cancelling")
_WINDOW = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """A completion window such as "24h", "90m" or "2d"."""
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise Unprocessable(f"completion_window {text!r} is not a duration like 24h, 90m or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def request_counts(session: Session, batch: Batch) -> dict[str, int]:
    """{total, completed, failed}: failed counts failed, expired and cancelled requests."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch.id).group_by(Job.status)
    ).all()
    by_status = {status: count for status, count in rows}
    done = by_status.get("succeeded", 0)
    failed = sum(by_status.get(s, 0) for s in ("failed", "expired", "cancelled"))
    return {"total": batch.request_total, "completed": done, "failed": failed}
