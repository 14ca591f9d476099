"""`nightowl submit | status | result`: a client of the REST API with progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from functools import partial
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

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.is_error:
            try:
                error = response.json()["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = response.text[:500]
            raise ApiError(f"HTTP {response.status_code} {message}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as f:
            return self._json("POST", "/v1/files", files={"file": (path.name, f)})

    def create_job(
        self, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/jobs", json=body, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def result(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}/result")

    def create_batch(
        self, input_file_id: str, completion_window: str, **extra: Any
    ) -> dict[str, Any]:
        """Start a batch; `extra` holds nightowl's additions (priority, window, ...) when set."""
        body = {
            "input_file_id": input_file_id,
            "endpoint": "/v1/jobs",
            "completion_window": completion_window,
        } | {name: value for name, value in extra.items() if value is not None}
        return self._json("POST", "/v1/batches", json=body)

    def _object(self, path: str, action: str | None) -> dict[str, Any]:
        # GET the object, or POST an action (cancel, retry, pause, ...) that answers with it.
        if action:
            return self._json("POST", f"{path}/{action}")
        return self._json("GET", path)

    def batch(self, batch_id: str, action: str | None = None) -> dict[str, Any]:
        return self._object(f"/v1/batches/{batch_id}", action)

    def file_content(self, file_id: str) -> bytes:
        return self._send("GET", f"/v1/files/{file_id}/content").content

    def wait_batch(self, batch_id: str, *, poll: float = 1.0, show: bool = True) -> dict[str, Any]:
        """Poll a batch until it ends, with a progress bar of its request counts."""

        def shown(batch: dict[str, Any]) -> tuple[str, int, int]:
            counts = batch["request_counts"]
            described = f"{batch_id} {batch['status']} ({counts['failed']} failed)"
            return described, counts["completed"] + counts["failed"], counts["total"]

        fetch = partial(self.batch, batch_id)
        return _follow(batch_id, "requests", fetch, shown, BATCH_FINAL, poll=poll, show=show)

    def wait(self, job_id: str, *, poll: float = 1.0, show: bool = True) -> dict[str, Any]:
        """Poll a job until it finishes, with a progress bar of its chunks."""

        def shown(job: dict[str, Any]) -> tuple[str, int, int]:
            return f"{job_id} {job['status']}", job["progress"]["done"], job["progress"]["total"]

        fetch = partial(self.job, job_id)
        return _follow(job_id, "chunks", fetch, shown, TERMINAL, poll=poll, show=show)

    def create_schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/schedules", json=body)

    def schedules(self, limit: int = 100, after: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        return self._json("GET", "/v1/schedules", params=params)

    def schedule(self, schedule_id: str, action: str | None = None) -> dict[str, Any]:
        return self._object(f"/v1/schedules/{schedule_id}", action)

    def delete_schedule(self, schedule_id: str) -> None:
        self._send("DELETE", f"/v1/schedules/{schedule_id}")

    def schedule_firings(self, schedule_id: str, limit: int = 100) -> dict[str, Any]:
        path = f"/v1/schedules/{schedule_id}/firings"
        return self._json("GET", path, params={"limit": limit})


def _follow(
    name: str,
    unit: str,
    fetch: Callable[[], dict[str, Any]],
    shown: Callable[[dict[str, Any]], tuple[str, int, int]],
    final: Collection[str],
    *,
    poll: float,
    show: bool,
) -> dict[str, Any]:
    """Fetch every `poll` seconds until its status is `final`, with a bar of what `shown` says
    (label, completed, total)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed}}/{{task.total}} {unit}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not show) as progress:
        bar = progress.add_task(name, total=None)
        while True:
            item = fetch()
            description, completed, total = shown(item)
            progress.update(bar, description=description, completed=completed, total=total or None)
            if item["status"] in final:
                return item
            time.sleep(poll)


class ApiError(Exception):
    """The API answered with an error."""
