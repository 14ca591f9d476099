"""structlog set-up: JSON lines in production, a readable console in development.

Context (request id, job id, chunk id, attempt) is bound through contextvars, so every event a
request or task logs carries it without passing loggers around.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from core.settings import Settings

bind_context = structlog.contextvars.bind_contextvars
clear_context = structlog.contextvars.clear_contextvars
bound_context = structlog.contextvars.bound_contextvars


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library's logging once for this process."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if settings.env == "production":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (uvicorn, celery) go to stderr as well.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, force=True)
    # bm25s sets its own logger to DEBUG and reports every index it builds.
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    """A logger to `sys.stderr` as it is at the time of the call: a harness that swaps stderr
    (Click's CliRunner, pytest's capture) and later closes its stream must not take logging
    down with it."""
    return structlog.PrintLogger(sys.stderr)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger; `name` is recorded as `logger_name`."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger
