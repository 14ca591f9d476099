"""Liveness and readiness: readiness checks the database, the broker and the storage."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ResourcesDep
from api.schemas import Health
from core.errors import NightowlError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """Ready when the database, the broker and the object store all answer."""
    checks: dict[str, str] = {}
    parts = {
        "database": resources.db.check,
        "storage": resources.store.check,
        "broker": getattr(resources.dispatcher, "check", lambda: None),
    }
    for name, check in parts.items():
        try:
            await run_in_threadpool(check)
            checks[name] = "ok"
        except NightowlError as exc:
            checks[name] = exc.message
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
