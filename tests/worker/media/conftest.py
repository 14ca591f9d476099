"""Long files for the media tests, made once per session: encoding 30 minutes takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.media_samples import long_audio


@pytest.fixture(scope="session")
def one_minute_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-minute mp3 of the long pattern (tones at 1-4 s and 6-9 s of every 10 s)."""
    return long_audio(tmp_path_factory.mktemp("long") / "one.mp3", 1)


@pytest.fixture(scope="session")
def thirty_minute_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-minute mp3 of the same pattern."""
    return long_audio(tmp_path_factory.mktemp("long") / "thirty.mp3", 30)
