"""Named time windows for overnight work: `night = "22:00-06:00 Europe/Berlin"`.

A window is a daily span of local wall-clock time in one time zone; it may cross midnight. Jobs
and batches that name a window stay `scheduled` until it opens (the reconciler releases them), and
work that has not started when it closes waits for the next opening: a queued job goes back to
`scheduled`, a running job's pending chunks wait (chunks already running finish). Nothing uses a
Celery ETA: the rows say when, and beat looks every `reconcile_interval_seconds`.

"May this job's work start now?" is decided in one place, `StartGate`: job intake (queued or
scheduled), plan and infer (go on, or wait) and the reconciler (which rows to hold, release and
re-send, as the same rule in SQL) all ask it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, or_

from core.db.models import Job

_SPEC = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*(\S+)?\s*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Window:
    """A daily window [start, end) in `zone`; `end <= start` means it ends the next day."""

    name: str
    start: time
    end: time
    zone: ZoneInfo

    def is_open(self, now: datetime) -> bool:
        """Whether `now` (aware) falls inside the window."""
        local = now.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_open(self, now: datetime) -> datetime:
        """The next opening at or after `now` (UTC); `now` itself when the window is open."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        for days in range(0, 3):
            day = (local + timedelta(days=days)).date()
            opening = datetime.combine(day, self.start, tzinfo=self.zone)
            if opening >= local:
                return opening.astimezone(UTC)
        raise AssertionError("a daily window opens within two days")

    def last_open(self, now: datetime) -> datetime:
        """The most recent opening at or before `now` (UTC): a schedule's slot."""
        local = now.astimezone(self.zone)
        for days in range(0, 3):
            day = (local - timedelta(days=days)).date()
            opening = datetime.combine(day, self.start, tzinfo=self.zone)
            if opening <= local:
                return opening.astimezone(UTC)
        raise AssertionError("a daily window opened within two days")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_window(name: str, spec: str, default_zone: str = "UTC") -> Window:
    """Parse `"HH:MM-HH:MM [Zone/Name]"`; ValueError with the reason when it is not one."""
    if not _NAME.match(name):
        raise ValueError(f"window name {name!r}: use lowercase letters, digits, '-' or '_'")
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f'window {name!r}: {spec!r} is not "HH:MM-HH:MM [time zone]"')
    h1, m1, h2, m2, zone = match.groups()
    try:
        start, end = time(int(h1), int(m1)), time(int(h2), int(m2))
    except ValueError:
        raise ValueError(f"window {name!r}: {spec!r} has an impossible time") from None
    if start == end:
        raise ValueError(f"window {name!r}: start and end are the same time")
    return Window(name, start, end, _zone(zone or default_zone))


def parse_windows(specs: dict[str, str], default_zone: str = "UTC") -> dict[str, Window]:
    """All the windows of the settings, by name."""
    _zone(default_zone)
    return {name: parse_window(name, spec, default_zone) for name, spec in specs.items()}


def open_windows(windows: dict[str, Window], now: datetime) -> list[str]:
    """The names of the windows open at `now`."""
    return [name for name, window in windows.items() if window.is_open(now)]


@dataclass(frozen=True)
class StartGate:
    """Whether a job's work may start at `now`: its `not_before` has passed and it names no
    window, an open one, or one the settings no longer define (plan then fails the job with the
    reason, `StartGate.unknown`)."""

    now: datetime
    closed: frozenset[str]
    known: frozenset[str]

    @classmethod
    def at(cls, windows: dict[str, Window], now: datetime) -> StartGate:
        """The gate of the configured `windows` at `now`."""
        closed = frozenset(name for name, window in windows.items() if not window.is_open(now))
        return cls(now, closed, frozenset(windows))

    def allows(self, window: str | None, not_before: datetime | None = None) -> bool:
        """Whether work of a job with this `window` and `not_before` may start now."""
        return (not_before is None or not_before <= self.now) and window not in self.closed

    def unknown(self, window: str | None) -> bool:
        """Whether `window` is a name the settings do not define."""
        return window is not None and window not in self.known

    def allows_window(self) -> ColumnElement[bool]:
        """`allows` for the job rows' windows, in SQL."""
        return or_(Job.window.is_(None), Job.window.not_in(self.closed))

    def allows_job(self) -> ColumnElement[bool]:
        """`allows` for the job rows' windows and `not_before`, in SQL."""
        return (Job.not_before.is_(None) | (Job.not_before <= self.now)) & self.allows_window()
