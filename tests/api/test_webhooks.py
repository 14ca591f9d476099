"""Webhooks over the API: job and batch events reach a real receiver, verified; deliveries are
listed per tenant; the SSRF guard refuses internal webhook URLs at submission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service
from tests.receiver import Receiver
from worker.webhooks import redeliver

ALLOW_LOOPBACK = {"fetch_allow_networks": ["127.0.0.1/32"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A signature-checking HTTP receiver on 127.0.0.1."""
    with Receiver().running() as running:
        yield running


@pytest.fixture
def hooked(make_service: object) -> Service:
    """A service whose outbound guard lets 127.0.0.1 (the receiver) through."""
    return make_service(**ALLOW_LOOPBACK)  # type: ignore[operator, no-any-return]


def _get(service: Service, key: str, path: str) -> Any:
    response = service.client.get(path, headers=service.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def _key(service: Service, receiver: Receiver, tenant: str = "acme") -> str:
    key = service.new_key(tenant)
    receiver.secret = _get(service, key, "/v1/webhooks/secret")["secret"]
    return key


def _upload(service: Service, key: str, data: bytes, name: str = "o.pdf") -> str:
    response = service.client.post(
        "/v1/files", files={"file": (name, data)}, headers=service.headers(key)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _job_body(file_id: str, **extra: Any) -> dict[str, Any]:
    body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": {"questions": ["q"]}}
    return body | extra


def _submit(service: Service, key: str, file_id: str, **extra: Any) -> Any:
    response = service.client.post(
        "/v1/jobs", json=_job_body(file_id, **extra), headers=service.headers(key)
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_a_job_that_succeeds_sends_one_verified_event(hooked: Service, receiver: Receiver) -> None:
    """job.succeeded reaches the receiver once, signed, with the job's status and artifacts."""
    key = _key(hooked, receiver)
    job = _submit(
        hooked, key, _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES)), webhook_url=receiver.url
    )
    hooked.dispatcher.drain()
    assert [r.error for r in receiver.requests] == [None]
    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    payload = request.verified
    assert payload["type"] == "job.succeeded"
    data = payload["data"]
    assert (data["id"], data["object"], data["status"]) == (job["id"], "job", "succeeded")
    assert data["kind"] == "document.qa" and data["error"] is None
    assert data["artifacts"] == ["answers.md", "result.json"]
    assert data["finished_at"] is not None
    delivery = _get(hooked, key, f"/v1/webhooks/deliveries/{request.headers['webhook-id']}")
    assert (delivery["status"], delivery["attempts"], delivery["event"]) == (
        "delivered",
        1,
        "job.succeeded",
    )
    assert delivery["object_id"] == job["id"] and delivery["last_status_code"] == 200
    assert redeliver(hooked.context) == []  # nothing left to send


def test_a_job_that_fails_sends_job_failed_with_the_error(
    hooked: Service, receiver: Receiver
) -> None:
    """A corrupt PDF ends the job failed; the event carries the error code and message."""
    key = _key(hooked, receiver)
    broken = _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES)[:400])
    job = _submit(hooked, key, broken, webhook_url=receiver.url)
    hooked.dispatcher.drain()
    assert receiver.events() == ["job.failed"]
    data = receiver.requests[0].verified["data"]
    assert data["id"] == job["id"] and data["status"] == "failed"
    assert data["error"]["code"] == "invalid_input" and data["error"]["message"]


def test_cancelling_a_job_sends_job_cancelled(hooked: Service, receiver: Receiver) -> None:
    """Cancel over the API records job.cancelled; cancelling again records no second event."""
    key = _key(hooked, receiver)
    job = _submit(
        hooked, key, _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES)), webhook_url=receiver.url
    )
    for _ in range(2):
        response = hooked.client.post(f"/v1/jobs/{job['id']}/cancel", headers=hooked.headers(key))
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
    hooked.dispatcher.drain()
    assert receiver.events() == ["job.cancelled"]
    assert receiver.requests[0].verified["data"]["id"] == job["id"]


def _batch(service: Service, key: str, lines: list[dict[str, Any]], **extra: Any) -> Any:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file_id = _upload(service, key, data, "batch.jsonl")
    body = {"input_file_id": file_id, "endpoint": "/v1/jobs"} | extra
    return service.client.post("/v1/batches", json=body, headers=service.headers(key))


def test_a_batch_sends_batch_completed_and_lines_with_their_own_url_job_events(
    hooked: Service, receiver: Receiver
) -> None:
    """A batch with a webhook gets batch.completed with the counts; its lines do not inherit
    the URL, so only the line that sets its own sends its job event."""
    key = _key(hooked, receiver)
    pdf = _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES))
    lines = [
        {"custom_id": "r0", "method": "POST", "url": "/v1/jobs", "body": _job_body(pdf)},
        {
            "custom_id": "r1",
            "method": "POST",
            "url": "/v1/jobs",
            "body": _job_body(pdf, webhook_url=receiver.url),
        },
    ]
    created = _batch(hooked, key, lines, webhook_url=receiver.url)
    assert created.status_code == 200, created.text
    batch = created.json()
    hooked.dispatcher.drain()
    assert sorted(receiver.events()) == ["batch.completed", "job.succeeded"]
    assert [r.error for r in receiver.requests] == [None] * 2
    done = next(
        r.verified["data"] for r in receiver.requests if r.verified["type"] == "batch.completed"
    )
    assert done["id"] == batch["id"] and done["object"] == "batch"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert done["output_file_id"] and done["error_file_id"] is None
    job_events = [
        r.verified["data"] for r in receiver.requests if r.verified["type"] == "job.succeeded"
    ]
    assert [d["custom_id"] for d in job_events] == ["r1"]
    assert {d["batch_id"] for d in job_events} == {batch["id"]}


def test_a_batch_that_fails_validation_sends_batch_failed(
    hooked: Service, receiver: Receiver
) -> None:
    """A batch whose lines are invalid fails at once, and says so on its webhook."""
    key = _key(hooked, receiver)
    created = _batch(hooked, key, [{"custom_id": "x", "method": "GET"}], webhook_url=receiver.url)
    assert created.status_code == 200 and created.json()["status"] == "failed"
    hooked.dispatcher.drain()
    assert receiver.events() == ["batch.failed"]
    data = receiver.requests[0].verified["data"]
    assert data["id"] == created.json()["id"] and data["status"] == "failed"


def test_internal_webhook_urls_are_refused_at_submission(service: Service) -> None:
    """Without an allow-list, loopback and metadata webhook URLs are 422 fetch_blocked, no rows."""
    key = service.new_key("acme")
    pdf = _upload(service, key, pdf_bytes(OBSERVATORY_PAGES))
    for url in (
        "http://127.0.0.1:9/hooks",
        "http://169.254.169.254/",
        "http://[::1]/x",
        "http://2130706433/",
    ):
        response = service.client.post(
            "/v1/jobs", json=_job_body(pdf, webhook_url=url), headers=service.headers(key)
        )
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "fetch_blocked"
    line = {"custom_id": "a", "method": "POST", "url": "/v1/jobs", "body": _job_body(pdf)}
    response = _batch(service, key, [line], webhook_url="http://10.0.0.1/hooks")
    assert response.status_code == 422 and response.json()["error"]["code"] == "fetch_blocked"
    # A line's own webhook_url is checked too and reported with its line number.
    bad_line = line | {"body": _job_body(pdf, webhook_url="http://192.168.0.1/")}
    batch = _batch(service, key, [bad_line]).json()
    assert batch["status"] == "failed"
    assert [(e["line"], e["code"]) for e in batch["errors"]["data"]] == [(1, "fetch_blocked")]
    assert _get(service, key, "/v1/jobs")["data"] == []


def test_deliveries_are_listed_per_tenant_and_the_secret_rotates(
    hooked: Service, receiver: Receiver
) -> None:
    """Listing filters and pages; another tenant sees none and gets 404; rotation changes it."""
    key = _key(hooked, receiver)
    pdf = _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES))
    jobs = [_submit(hooked, key, pdf, webhook_url=receiver.url)["id"] for _ in range(3)]
    for job_id in jobs[:2]:
        hooked.client.post(f"/v1/jobs/{job_id}/cancel", headers=hooked.headers(key))
    hooked.dispatcher.drain()
    listed = _get(hooked, key, "/v1/webhooks/deliveries?limit=2")
    assert len(listed["data"]) == 2 and listed["has_more"]
    rest = _get(hooked, key, f"/v1/webhooks/deliveries?limit=2&after={listed['last_id']}")
    assert len(rest["data"]) == 1 and not rest["has_more"]
    every = listed["data"] + rest["data"]
    assert sorted(d["object_id"] for d in every) == sorted(jobs)
    assert [d["id"] for d in every] == sorted((d["id"] for d in every), reverse=True)
    assert {d["status"] for d in every} == {"delivered"}
    only = _get(hooked, key, f"/v1/webhooks/deliveries?object_id={jobs[2]}")["data"]
    assert [(d["object_id"], d["event"]) for d in only] == [(jobs[2], "job.succeeded")]
    assert _get(hooked, key, "/v1/webhooks/deliveries?status=failed")["data"] == []

    other = hooked.new_key("mallory")
    assert _get(hooked, other, "/v1/webhooks/deliveries")["data"] == []
    stolen = hooked.client.get(
        f"/v1/webhooks/deliveries/{every[0]['id']}", headers=hooked.headers(other)
    )
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    mine = _get(hooked, key, "/v1/webhooks/secret")["secret"]
    assert mine == receiver.secret and mine.startswith("whsec_")
    assert _get(hooked, other, "/v1/webhooks/secret")["secret"] != mine
    rotated = hooked.client.post("/v1/webhooks/secret/rotate", headers=hooked.headers(key))
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != mine and _get(hooked, key, "/v1/webhooks/secret")["secret"] == new
    assert hooked.client.get("/v1/webhooks/secret").status_code == 401


def test_cancelling_a_batch_sends_job_cancelled_for_lines_with_their_own_url(
    hooked: Service, receiver: Receiver
) -> None:
    key = _key(hooked, receiver)
    pdf = _upload(hooked, key, pdf_bytes(OBSERVATORY_PAGES))
    lines = [
        {"custom_id": "quiet", "method": "POST", "url": "/v1/jobs", "body": _job_body(pdf)},
        {
            "custom_id": "loud",
            "method": "POST",
            "url": "/v1/jobs",
            "body": _job_body(pdf, webhook_url=receiver.url),
        },
    ]
    batch = _batch(hooked, key, lines, webhook_url=receiver.url).json()
    cancelled = hooked.client.post(f"/v1/batches/{batch['id']}/cancel", headers=hooked.headers(key))
    assert cancelled.status_code == 200, cancelled.text
    hooked.dispatcher.drain()
    assert sorted(receiver.events()) == ["batch.cancelled", "job.cancelled"]
    job = next(
        r.verified["data"] for r in receiver.requests if r.verified["type"] == "job.cancelled"
    )
    assert job["custom_id"] == "loud"
