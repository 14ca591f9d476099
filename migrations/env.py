"""Alembic environment: the URL comes from `Settings` unless the caller put one in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from core.db.models import Base
from core.settings import Settings

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _run(connection)


def _run(connection: object) -> None:
    # Batch mode lets ALTERs run on SQLite, which rebuilds the table instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
