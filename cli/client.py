"""`nightowl submit | status | result`: a client of the REST API with progress bars."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core.state import TERMINAL

BATCH_FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class ApiClient:
    """A thin httpx client of the nightowl API; errors become `ApiError` with their message."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def _check(self, response: httpx.Response) -> Any:
        if response.is_error:
            try:
                error = response.json()["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = response.text[:500]
            raise ApiError(f"HTTP {response.status_code} {message}")
        return response.json()

    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as f:
            return self._check(self.http.post("/v1/files", files={"file": (path.name, f)}))  # type: ignore[no-any-return]

    def create_job(
        self, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._check(self.http.post("/v1/jobs", json=body, headers=headers))  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"/v1/jobs/{job_id}"))  # type: ignore[no-any-return]

    def result(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"/v1/jobs/{job_id}/result"))  # type: ignore[no-any-return]

    def create_batch(
        self, input_file_id: str, completion_window: str, **extra: Any
    ) -> dict[str, Any]:
        """Start a batch; `extra` holds nightowl's additions (priority, window, ...) when set."""
        body = {
            "input_file_id": input_file_id,
            "endpoint": "/v1/jobs",
            "completion_window": completion_window,
        } | {name: value for name, value in extra.items() if value is not None}
        return self._check(self.http.post("/v1/batches", json=body))  # type: ignore[no-any-return]

    def batch(self, batch_id: str, action: str | None = None) -> dict[str, Any]:
        if action:
            return self._check(self.http.post(f"/v1/batches/{batch_id}/{action}"))  # type: ignore[no-any-return]
        return self._check(self.http.get(f"/v1/batches/{batch_id}"))  # type: ignore[no-any-return]

    def file_content(self, file_id: str) -> bytes:
        response = self.http.get(f"/v1/files/{file_id}/content")
        if response.is_error:
            self._check(response)
        return response.content

    def wait_batch(self, batch_id: str, *, poll: float = 1.0, show: bool = True) -> dict[str, Any]:
        """Poll a batch until it ends, with a progress bar of its request counts."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} requests"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, disable=not show) as progress:
            bar = progress.add_task(batch_id, total=None)
            while True:
                batch = self.batch(batch_id)
                counts = batch["request_counts"]
                progress.update(
                    bar,
                    description=f"{batch_id} {batch['status']} ({counts['failed']} failed)",
                    completed=counts["completed"] + counts["failed"],
                    total=counts["total"] or None,
                )
                if batch["status"] in BATCH_FINAL:
                    return batch
                time.sleep(poll)

    def wait(self, job_id: str, *, poll: float = 1.0, show: bool = True) -> dict[str, Any]:
        """Poll a job until it finishes, with a progress bar of its chunks."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} chunks"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, disable=not show) as progress:
            bar = progress.add_task(job_id, total=None)
            while True:
                job = self.job(job_id)
                done, total = job["progress"]["done"], job["progress"]["total"]
                progress.update(
                    bar,
                    description=f"{job_id} {job['status']}",
                    completed=done,
                    total=total or None,
                )
                if job["status"] in TERMINAL:
                    return job
                time.sleep(poll)

    def create_schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._check(self.http.post("/v1/schedules", json=body))  # type: ignore[no-any-return]

    def schedules(self, limit: int = 100, after: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        return self._check(self.http.get("/v1/schedules", params=params))  # type: ignore[no-any-return]

    def schedule(self, schedule_id: str, action: str | None = None) -> dict[str, Any]:
        if action:
            return self._check(self.http.post(f"/v1/schedules/{schedule_id}/{action}"))  # type: ignore[no-any-return]
        return self._check(self.http.get(f"/v1/schedules/{schedule_id}"))  # type: ignore[no-any-return]

    def delete_schedule(self, schedule_id: str) -> None:
        response = self.http.delete(f"/v1/schedules/{schedule_id}")
        if response.is_error:
            self._check(response)

    def schedule_firings(self, schedule_id: str, limit: int = 100) -> dict[str, Any]:
        path = f"/v1/schedules/{schedule_id}/firings"
        return self._check(self.http.get(path, params={"limit": limit}))  # type: ignore[no-any-return]


class ApiError(Exception):
    """The API answered with an error."""
