"""Named windows: parsing, opening across midnight and time zones, next and last openings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from core.settings import Settings
from core.windows import StartGate, open_windows, parse_window, parse_windows


def test_a_window_across_midnight_in_its_own_time_zone() -> None:
    night = parse_window("night", "22:00-06:00 Europe/Berlin")
    # Berlin is UTC+1 in January: 22:00 local is 21:00 UTC, 06:00 local is 05:00 UTC.
    assert not night.is_open(datetime(2026, 1, 10, 20, 59, tzinfo=UTC))
    assert night.is_open(datetime(2026, 1, 10, 21, 0, tzinfo=UTC))
    assert night.is_open(datetime(2026, 1, 11, 4, 59, tzinfo=UTC))
    assert not night.is_open(datetime(2026, 1, 11, 5, 0, tzinfo=UTC))
    # In July (UTC+2) the same local window is an hour earlier in UTC.
    assert night.is_open(datetime(2026, 7, 10, 20, 30, tzinfo=UTC))


def test_next_and_last_openings() -> None:
    night = parse_window("night", "22:00-06:00", "UTC")
    noon = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert night.next_open(noon) == datetime(2026, 3, 3, 22, 0, tzinfo=UTC)
    assert night.last_open(noon) == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    late = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    assert night.next_open(late) == late  # open now
    assert night.last_open(late) == datetime(2026, 3, 3, 22, 0, tzinfo=UTC)


def test_a_day_window_and_open_windows() -> None:
    windows = parse_windows({"day": "09:00-17:30", "night": "22:00-06:00"}, "UTC")
    assert windows["day"].start == time(9, 0) and windows["day"].end == time(17, 30)
    assert open_windows(windows, datetime(2026, 3, 3, 10, 0, tzinfo=UTC)) == ["day"]
    assert open_windows(windows, datetime(2026, 3, 3, 23, 0, tzinfo=UTC)) == ["night"]
    assert open_windows(windows, datetime(2026, 3, 3, 19, 0, tzinfo=UTC)) == []


def test_the_start_gate_is_one_rule_for_windows_and_not_before() -> None:
    """Work may start with no window, an open one or an unknown one, once not_before has passed."""
    windows = parse_windows({"day": "09:00-17:30", "night": "22:00-06:00"}, "UTC")
    at_ten = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    gate = StartGate.at(windows, at_ten)
    assert gate.closed == {"night"}
    assert gate.allows(None) and gate.allows("day") and not gate.allows("night")
    assert gate.allows("gone") and gate.unknown("gone") and not gate.unknown("day")
    assert not gate.unknown(None)
    assert gate.allows("day", at_ten) and not gate.allows("day", at_ten + timedelta(seconds=1))
    assert not gate.allows(None, at_ten + timedelta(hours=1))


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("night", "22-06", "is not"),
        ("night", "25:00-06:00", "impossible time"),
        ("night", "22:00-22:00", "same time"),
        ("night", "22:00-06:00 Mars/Olympus", "unknown time zone"),
        ("Night Shift", "22:00-06:00", "window name"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(name: str, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(name, spec)
    with pytest.raises(ValidationError, match=message):
        Settings(windows={name: spec})


def test_windows_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTOWL_WINDOWS", '{"night": "23:00-05:00"}')
    monkeypatch.setenv("NIGHTOWL_WINDOW_TIMEZONE", "America/New_York")
    night = Settings().window_table["night"]
    assert str(night.zone) == "America/New_York" and night.start == time(23, 0)
