"""Alembic migrations run on PostgreSQL and SQLite and match the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from core.migrate import alembic_config, downgrade, upgrade
from testkit.backends import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_url"))


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_autogenerate_diff(empty_database: str) -> None:
    """Head creates every table, base removes them, head again works, and autogenerate finds
    nothing the models have that the migrations lack."""
    expected = {"tenants", "api_keys", "files", "jobs", "chunks", "batches", "alembic_version"}
    expected |= {"webhook_deliveries", "schedules", "schedule_firings", "schedule_objects"}
    upgrade(empty_database)
    assert _tables(empty_database) == expected
    downgrade(empty_database)
    assert _tables(empty_database) == {"alembic_version"}
    upgrade(empty_database)
    assert _tables(empty_database) == expected
    command.check(alembic_config(empty_database))  # raises if the models differ
