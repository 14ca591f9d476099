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
    settings = Settings()
    assert (settings.max_attempts, settings.model) == (7, "tiny")
