"""`/v1/jobs`: create, get, list, cancel, result, artifacts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.schemas.jobs import JobCreate, JobList, JobOut, JobQuery
from api.services import jobs as service
from core.faults import crash_after_commit

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobQueryDep = Annotated[JobQuery, Query()]

_MEDIA_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}


@router.post("", status_code=202, response_model=JobOut)
def create_job(
    body: JobCreate,
    response: Response,
    principal: PrincipalDep,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JobOut:
    """Submit a job; it is queued after the row commits. Same Idempotency-Key, same job."""
    crash_after_commit(session, resources.settings, "api.job.after_commit")  # tests only
    job, created = service.create_job(
        session,
        resources.dispatcher,
        resources.settings,
        principal.tenant_id,
        body,
        idempotency_key,
    )
    if not created:
        response.status_code = 200
    return JobOut.of(job)


@router.get("", response_model=JobList)
def list_jobs(principal: PrincipalDep, session: SessionDep, query: JobQueryDep) -> JobList:
    """The caller's jobs, newest first; pass `after=<last_id>` for the next page."""
    rows = service.list_jobs(session, principal.tenant_id, query)
    return JobList.of(rows, JobOut.of)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, principal: PrincipalDep, session: SessionDep) -> JobOut:
    """A job's status, progress, timings, usage and artifact names."""
    job = service.get_job(session, principal.tenant_id, job_id)
    return JobOut.of(job, service.live_usage(session, job))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    job_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> JobOut:
    """Cancel a job that has not finished; chunks not started will not run."""
    job = service.request_cancel(session, resources.dispatcher, principal.tenant_id, job_id)
    return JobOut.of(job)


@router.get("/{job_id}/result")
def job_result(
    job_id: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> Any:
    """The result JSON of a succeeded job, with links to its artifacts."""
    return service.result(session, resources.store, principal.tenant_id, job_id)


@router.get("/{job_id}/artifacts/{name}", response_model=None)
def job_artifact(
    job_id: str, name: str, principal: PrincipalDep, session: SessionDep, resources: ResourcesDep
) -> Response:
    """An artifact's bytes (local storage) or a redirect to a short-lived presigned URL (S3)."""
    key = service.artifact_key(session, principal.tenant_id, job_id, name)
    url = resources.store.presigned_url(key, filename=name)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    suffix = name[name.rfind(".") :] if "." in name else ""
    return StreamingResponse(
        resources.store.iter_bytes(key),
        media_type=_MEDIA_TYPES.get(suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
