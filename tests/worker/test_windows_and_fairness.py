"""Overnight windows and fair dispatch of batch jobs, on both backends, with a moved clock.

The worker context's clock is what the pipeline and the reconciler read, so a test moves it to
"inside the window", "after it closed" and "the next night" instead of sleeping for hours.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db.models import Chunk, Job
from core.db.types import utcnow
from core.fairness import in_flight
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service
from worker.reconcile import reconcile

MakeService = Callable[..., Service]


class Night:
    """A two-hour window that is closed at the real time of the test (jobs are made then)."""

    def __init__(self) -> None:
        now = utcnow()
        start = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
        self.spec = f"{start:%H:%M}-{start + timedelta(hours=2):%H:%M} UTC"
        self.before = now
        self.inside = start + timedelta(hours=1)
        self.after = start + timedelta(hours=3)
        self.next_night = self.inside + timedelta(days=1)


def _service(make_service: MakeService, night: Night, **overrides: Any) -> Service:
    return make_service(windows={"night": night.spec}, **overrides)


def _file(service: Service, key: str) -> str:
    response = service.client.post(
        "/v1/files",
        files={"file": ("o.pdf", pdf_bytes(OBSERVATORY_PAGES))},
        headers=service.headers(key),
    )
    return str(response.json()["id"])


def _job_body(file_id: str, questions: int = 1, **extra: Any) -> dict[str, Any]:
    asked = ["Who founded it?", "When?", "Where?"][:questions]
    body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": {"questions": asked}}
    return body | extra


def _batch(service: Service, key: str, lines: int, **extra: Any) -> str:
    file_id = _file(service, key)
    rows = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/jobs", "body": _job_body(file_id)}
        for i in range(lines)
    ]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload = service.client.post(
        "/v1/files", files={"file": ("b.jsonl", data)}, headers=service.headers(key)
    )
    body = {"input_file_id": upload.json()["id"], "endpoint": "/v1/jobs", **extra}
    response = service.client.post("/v1/batches", json=body, headers=service.headers(key))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _statuses(service: Service, batch_id: str) -> dict[str, str]:
    with service.context.db.transaction() as session:
        rows = session.execute(select(Job.custom_id, Job.status).where(Job.batch_id == batch_id))
        return {str(custom_id): status for custom_id, status in rows}


def _set_clock(service: Service, when: datetime) -> None:
    service.context.clock = lambda: when


def test_a_job_waits_for_its_window_and_beat_releases_it(make_service: MakeService) -> None:
    night = Night()
    service = _service(make_service, night)
    key = service.new_key("acme")
    body = _job_body(_file(service, key), window="night")
    job = service.client.post("/v1/jobs", json=body, headers=service.headers(key)).json()
    assert job["status"] == "scheduled"
    assert service.dispatcher.drain() == 0  # nothing was published
    _set_clock(service, night.before)
    assert reconcile(service.context).released == []
    _set_clock(service, night.inside)
    assert reconcile(service.context).released == [job["id"]]
    service.dispatcher.drain()
    done = service.client.get(f"/v1/jobs/{job['id']}", headers=service.headers(key)).json()
    assert done["status"] == "succeeded"


def test_an_unknown_window_is_refused(make_service: MakeService) -> None:
    service = _service(make_service, Night())
    key = service.new_key("acme")
    body = _job_body(_file(service, key), window="weekend")
    response = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
    assert response.status_code == 422
    assert "unknown window 'weekend'; known: night" in response.json()["error"]["message"]


def test_unstarted_batch_work_waits_for_the_next_night(make_service: MakeService) -> None:
    """The window closes after the first line: the others wait, then finish the next night."""
    night = Night()
    service = _service(make_service, night, bulk_in_flight=1)
    key = service.new_key("acme")
    batch_id = _batch(service, key, 3, window="night", completion_window="72h")
    assert set(_statuses(service, batch_id).values()) == {"scheduled"}
    _set_clock(service, night.inside)
    report = reconcile(service.context)
    assert len(report.released) == 3 and len(report.admitted) == 1

    def close_after_first_line(step: str, _: str) -> None:
        if step == "finalize":
            _set_clock(service, night.after)

    service.dispatcher.drain(close_after_first_line)
    reconcile(service.context)  # at `after`: what was queued goes back to scheduled
    statuses = sorted(_statuses(service, batch_id).values())
    assert statuses == ["scheduled", "scheduled", "succeeded"]
    _set_clock(service, night.next_night)
    assert len(reconcile(service.context).released) == 2
    service.dispatcher.drain()
    assert set(_statuses(service, batch_id).values()) == {"succeeded"}
    batch = service.client.get(f"/v1/batches/{batch_id}", headers=service.headers(key)).json()
    assert batch["status"] == "completed" and batch["request_counts"]["completed"] == 3


def test_a_started_job_keeps_its_pending_chunks_until_the_window_opens(
    make_service: MakeService,
) -> None:
    night = Night()
    service = _service(make_service, night, questions_per_chunk=1)
    key = service.new_key("acme")
    body = _job_body(_file(service, key), questions=3, window="night")
    job_id = service.client.post("/v1/jobs", json=body, headers=service.headers(key)).json()["id"]
    _set_clock(service, night.inside)
    reconcile(service.context)

    def close_after_planning(step: str, _: str) -> None:
        if step == "plan":
            _set_clock(service, night.after)

    service.dispatcher.drain(close_after_planning)
    with service.context.db.transaction() as session:
        chunks = list(session.scalars(select(Chunk.status).where(Chunk.job_id == job_id)))
        assert session.get_one(Job, job_id).status == "running"
    assert chunks == ["pending"] * 3
    assert reconcile(service.context).chunks == []  # not re-sent while the window is closed
    _set_clock(service, night.next_night)
    assert len(reconcile(service.context).chunks) == 3
    service.dispatcher.drain()
    done = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
    assert done["status"] == "succeeded" and done["progress"] == {"done": 3, "total": 3}


def test_a_big_batch_does_not_starve_another_tenants_small_one(make_service: MakeService) -> None:
    """Tenant A's 8 lines come first, tenant B's 3 lines after: B's lines are started in turn
    with A's (round-robin), not after all of A's, and never more than the limit run at once."""
    service = make_service(bulk_in_flight=2)
    key_a, key_b = service.new_key("a"), service.new_key("b")
    batch_a = _batch(service, key_a, 8)
    batch_b = _batch(service, key_b, 3)
    with service.context.db.transaction() as session:
        tenant_of = {
            row.id: row.tenant_id for row in session.execute(select(Job.id, Job.tenant_id))
        }
    tenant_b = tenant_of[next(iter(_job_ids(service, batch_b)))]
    planned: list[str] = []
    most_in_flight = 0

    def watch(step: str, object_id: str) -> None:
        nonlocal most_in_flight
        if step == "plan":
            planned.append("b" if tenant_of[object_id] == tenant_b else "a")
        with service.context.db.transaction() as session:
            most_in_flight = max(most_in_flight, sum(in_flight(session).values()))

    service.dispatcher.drain(watch)
    assert planned.count("a") == 8 and planned.count("b") == 3
    # Round-robin from the moment B arrives: a a b a b a b a a a a (B done by the 7th start).
    assert planned[:7].count("b") == 3, planned
    assert most_in_flight <= 2
    for batch_id in (batch_a, batch_b):
        assert set(_statuses(service, batch_id).values()) == {"succeeded"}


def _job_ids(service: Service, batch_id: str) -> list[str]:
    with service.context.db.transaction() as session:
        return list(session.scalars(select(Job.id).where(Job.batch_id == batch_id)))


def test_batch_settings_are_defaults_for_its_lines(make_service: MakeService) -> None:
    """priority and not_before on the batch apply to lines that do not set their own."""
    service = make_service()
    key = service.new_key("acme")
    file_id = _file(service, key)
    later = (utcnow() + timedelta(hours=5)).isoformat()
    rows = [
        {"custom_id": "plain", "method": "POST", "url": "/v1/jobs", "body": _job_body(file_id)},
        {
            "custom_id": "own",
            "method": "POST",
            "url": "/v1/jobs",
            "body": _job_body(file_id, priority=1, not_before=utcnow().isoformat()),
        },
    ]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload = service.client.post(
        "/v1/files", files={"file": ("b.jsonl", data)}, headers=service.headers(key)
    )
    body = {
        "input_file_id": upload.json()["id"],
        "endpoint": "/v1/jobs",
        "priority": 7,
        "not_before": later,
    }
    batch = service.client.post("/v1/batches", json=body, headers=service.headers(key)).json()
    assert batch["priority"] == 7 and batch["not_before"] is not None
    with service.context.db.transaction() as session:
        jobs = {
            row.custom_id: (row.priority, row.status)
            for row in session.execute(
                select(Job.custom_id, Job.priority, Job.status).where(Job.batch_id == batch["id"])
            )
        }
    assert jobs == {"plain": (7, "scheduled"), "own": (1, "queued")}
