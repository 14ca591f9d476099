"""Settings fail closed: incomplete S3 settings and production fault points are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_embedded_defaults_point_under_home(tmp_path: Path) -> None:
    """With no URLs, SQL is a SQLite file and objects a folder under `home`."""
    settings = Settings(home=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'nightowl.db'}"
    assert settings.storage_dir == tmp_path / "objects"
    assert settings.model_store == tmp_path / "models"


def test_incomplete_s3_settings_are_refused(tmp_path: Path) -> None:
    """A bucket without credentials is an error at start, not at the first upload."""
    with pytest.raises(ValidationError, match="NIGHTOWL_S3_ACCESS_KEY_ID"):
        Settings(home=tmp_path, s3_bucket="b")


def test_fault_points_are_refused_in_production(tmp_path: Path) -> None:
    """The test-only chunk delay cannot be switched on in production."""
    with pytest.raises(ValidationError, match="fault points"):
        Settings(home=tmp_path, env="production", fault_chunk_delay_seconds=1.0)


def test_settings_come_from_nightowl_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """NIGHTOWL_* variables set the fields of the same name."""
    monkeypatch.setenv("NIGHTOWL_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("NIGHTOWL_MODEL", "tiny")
    monkeypatch.setenv("NIGHTOWL_VIDEO_FRAME_TOKENS", "140")
    settings = Settings()
    assert (settings.max_attempts, settings.model, settings.video_frame_tokens) == (7, "tiny", 140)


def test_every_setting_survives_a_round_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each field written as a NIGHTOWL_* string reads back equal (child processes rely on it)."""
    original = Settings(home=tmp_path, model="tiny", database_url="sqlite:///x.db")
    for name, value in original.model_dump(exclude_none=True).items():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        monkeypatch.setenv(f"NIGHTOWL_{name.upper()}", str(raw))
    assert Settings().model_dump() == original.model_dump()


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("true", True), ("false", False)])
def test_speculation_is_auto_unless_forced(
    monkeypatch: pytest.MonkeyPatch, text: str, value: object
) -> None:
    """The default is "auto"; NIGHTOWL_SPECULATIVE forces the drafter on or off; junk is refused."""
    assert Settings().speculative == "auto"
    monkeypatch.setenv("NIGHTOWL_SPECULATIVE", text)
    assert Settings().speculative == value
    monkeypatch.setenv("NIGHTOWL_SPECULATIVE", "sometimes")
    with pytest.raises(ValidationError, match="speculative"):
        Settings()
