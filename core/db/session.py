"""The SQL engine and the transaction scope: one place per process commits.

`Database.transaction()` is the only commit point. Work that must happen only once the rows are
durable (publishing a queue message) is registered with `on_commit` and runs after the commit; it
is dropped on rollback; once the commit is done, a callback that fails (the broker is down) is
logged and not raised, since the caller cannot undo the commit and the reconciler re-sends lost
messages from the rows. On SQLite every transaction starts with `BEGIN IMMEDIATE`, so a
read-then-write cannot interleave with another writer (SQLite is the one-machine default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ServiceUnavailable
from core.logging import get_logger

_AFTER_COMMIT = "nightowl.after_commit"
log = get_logger("db")


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own BEGIN is deferred).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` after `session`'s transaction commits; never if it rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


class Database:
    """An engine plus a session factory for one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, then runs on-commit callbacks."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except (OperationalError, InterfaceError) as exc:
            session.rollback()
            raise ServiceUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            callbacks = session.info.pop(_AFTER_COMMIT, [])
            session.close()
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # the rows are durable: the reconciler takes it from here
                log.warning("db.after_commit.failed", error=f"{type(exc).__name__}: {exc}")

    def check(self) -> None:
        """Raise ServiceUnavailable unless the database answers a query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, InterfaceError) as exc:
            raise ServiceUnavailable(f"database unavailable: {exc.__class__.__name__}") from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
