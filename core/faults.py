"""Test-only fault points: the process dies (`os._exit(137)`, as under SIGKILL) at a named place.

`Settings.fault_crash_at` names the point, optionally with a marker after a colon:
`"infer.after_result"` crashes every time that point is reached; `"infer.before_model:POISON"`
only when the text passed there contains `POISON` (a poison input). Settings refuse it in
production. Points: `api.job.after_commit` and `plan.after_commit` (after a commit, before its
publish), `infer.before_model`, `infer.after_result` (after the result commits, before the ack).
"""

from __future__ import annotations

import os
from functools import partial

from sqlalchemy.orm import Session

from core.db import on_commit
from core.logging import get_logger
from core.settings import Settings

CRASH_EXIT_CODE = 137
log = get_logger("faults")


def crash_point(settings: Settings, name: str, text: str = "") -> None:
    """Exit at once, without cleanup, if `settings.fault_crash_at` names this point."""
    target = settings.fault_crash_at
    if not target:
        return
    point, _, marker = target.partition(":")
    if point == name and (not marker or marker in text):
        log.warning("fault.crash", point=name)
        os._exit(CRASH_EXIT_CODE)


def crash_after_commit(session: Session, settings: Settings, name: str) -> None:
    """Crash at `name` right after `session` commits, before callbacks registered after this."""
    if settings.fault_crash_at:
        on_commit(session, partial(crash_point, settings, name))
