"""The FastAPI application: resources made in the lifespan, errors as `{"error": {...}}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import Resources
from api.ratelimit import KeyRateLimiter
from api.routes import batches, files, health, jobs, schedules, webhooks
from api.schemas import ERROR_RESPONSES
from core.db import Database
from core.db.types import new_id
from core.errors import NightowlError
from core.logging import bind_context, clear_context, configure_logging, get_logger
from core.queue import CeleryDispatcher, make_celery
from core.settings import Settings
from core.storage import make_store

log = get_logger("api")


def build_resources(settings: Settings) -> Resources:
    """The database, object store and queue publisher of an API process."""
    return Resources(
        settings=settings,
        db=Database(settings.sqlalchemy_url),
        store=make_store(settings),
        dispatcher=CeleryDispatcher(make_celery(settings), settings),
    )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> FastAPI:
    """The API; `resources` may be given (tests, `nightowl serve`), else built at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = resources is None
        app.state.resources = resources or build_resources(settings or Settings())
        app.state.rate_limiter = KeyRateLimiter.from_settings(app.state.resources.settings)
        configure_logging(app.state.resources.settings)
        yield
        if own:
            app.state.resources.db.dispose()

    app = FastAPI(title="nightowl", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    app.include_router(files.router)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(schedules.router)
    app.include_router(webhooks.router)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Any) -> Any:
        clear_context()
        request_id = request.headers.get("x-request-id") or new_id("req")
        bind_context(request_id=request_id[:64])
        response = await call_next(request)
        response.headers["x-request-id"] = request_id[:64]
        return response

    @app.exception_handler(NightowlError)
    async def nightowl_error(_request: Request, exc: NightowlError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("api.error", code=exc.code, message=exc.message)
        headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return _error(exc.http_status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unexpected_error", error=type(exc).__name__)
        return _error(500, "internal_error", "internal error")

    return app
