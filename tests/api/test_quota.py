"""The per-tenant cap on unfinished jobs: single jobs and whole batches past it answer 429
queue_full and make nothing; other tenants and idempotent retries are unaffected."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from core.db.models import Batch, Job
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service

QA = {"kind": "document.qa", "params": {"questions": ["Who founded the observatory?"]}}


def _upload(service: Service, key: str, name: str, data: bytes) -> str:
    response = service.client.post(
        "/v1/files", files={"file": (name, data)}, headers=service.headers(key)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _job(service: Service, key: str, file_id: str, idempotency_key: str | None = None) -> Any:
    headers = service.headers(key) | (
        {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    )
    return service.client.post(
        "/v1/jobs", json=QA | {"input": {"file_id": file_id}}, headers=headers
    )


def _count(service: Service, model: Any) -> int:
    with service.context.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_jobs_past_the_cap_are_429_until_some_finish(make_service: Any) -> None:
    """With a cap of 2, the third unfinished job is 429 queue_full; a retry with the same
    Idempotency-Key still returns its job; another tenant is unaffected; once the jobs finish,
    submissions pass again."""
    service: Service = make_service(tenant_max_queued_jobs=2)
    acme, other = service.new_key("acme"), service.new_key("other")
    file_id = _upload(service, acme, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    assert _job(service, acme, file_id, "first").status_code == 202
    assert _job(service, acme, file_id).status_code == 202
    refused = _job(service, acme, file_id)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "queue_full"
    assert "at most 2" in error["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert _count(service, Job) == 2
    assert _job(service, acme, file_id, "first").status_code == 200  # the same job, not a 429
    other_file = _upload(service, other, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    assert _job(service, other, other_file).status_code == 202
    service.dispatcher.drain()
    assert _job(service, acme, file_id).status_code == 202


def test_a_batch_past_the_cap_is_429_before_any_job_is_made(make_service: Any) -> None:
    """With a cap of 3 and one job unfinished, a 3-line batch is refused whole (429, no batch,
    no jobs) and a 2-line batch is accepted."""
    service: Service = make_service(tenant_max_queued_jobs=3)
    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    assert _job(service, key, file_id).status_code == 202

    def batch(lines: int) -> Any:
        body = QA | {"input": {"file_id": file_id}}
        data = "".join(
            json.dumps({"custom_id": f"l{n}", "method": "POST", "url": "/v1/jobs", "body": body})
            + "\n"
            for n in range(lines)
        )
        input_id = _upload(service, key, "b.jsonl", data.encode())
        request = {"input_file_id": input_id, "endpoint": "/v1/jobs", "completion_window": "24h"}
        return service.client.post("/v1/batches", json=request, headers=service.headers(key))

    refused = batch(3)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "queue_full"
    assert (_count(service, Job), _count(service, Batch)) == (1, 0)
    accepted = batch(2)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["request_counts"]["total"] == 2
    assert _count(service, Job) == 3
