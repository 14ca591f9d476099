"""Stage runner and reconciler on both backends, through the in-process dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select, update

from core.db.models import Chunk, Job
from core.db.types import utcnow
from core.errors import ServiceUnavailable
from core.state import claim_chunk
from core.storage import ObjectStore, StoredObject
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service
from worker.reconcile import reconcile
from worker.stages import plan_job


class FlakyStore:
    """An ObjectStore that fails its first `failures` downloads, then behaves like `inner`."""

    def __init__(self, inner: ObjectStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def download(self, key: str, path: Path) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ServiceUnavailable("object storage unavailable: injected")
        self.inner.download(key, path)

    def put_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        return self.inner.put_stream(key, stream, max_bytes)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.inner.put_bytes(key, data, content_type)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        return self.inner.iter_bytes(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def presigned_url(self, key: str, filename: str | None = None) -> str | None:
        return self.inner.presigned_url(key, filename)

    def local_path(self, key: str) -> Path | None:
        return None  # make the pipeline download (and so meet the failures)

    def check(self) -> None:
        self.inner.check()


def _job(service: Service, key: str) -> str:
    upload = service.client.post(
        "/v1/files",
        files={"file": ("o.pdf", pdf_bytes(OBSERVATORY_PAGES))},
        headers=service.headers(key),
    )
    body = {
        "kind": "document.qa",
        "input": {"file_id": upload.json()["id"]},
        "params": {"questions": ["Who founded it?"]},
    }
    return str(
        service.client.post("/v1/jobs", json=body, headers=service.headers(key)).json()["id"]
    )


def _job_row(service: Service, job_id: str) -> Job:
    with service.context.db.transaction() as session:
        return session.get_one(Job, job_id)


def test_a_retryable_failure_is_retried_and_the_job_succeeds(service: Service) -> None:
    """Storage failing twice during planning is retried; the job then succeeds."""
    service.context.store = FlakyStore(service.context.store, failures=2)
    job_id = _job(service, service.new_key("acme"))
    service.dispatcher.drain()
    job = _job_row(service, job_id)
    assert job.status == "succeeded"
    assert job.attempt >= 3 + 1  # three planning claims and one finalize claim


def test_failures_past_the_cap_fail_the_job_with_the_reason(service: Service) -> None:
    """Storage failing on every try ends the job `failed` after max_attempts, reason kept."""
    service.context.store = FlakyStore(service.context.store, failures=100)
    job_id = _job(service, service.new_key("acme"))
    service.dispatcher.drain()
    job = _job_row(service, job_id)
    assert job.status == "failed"
    assert job.error_code == "attempts_exhausted"
    assert "injected" in (job.error_message or "")
    assert job.stage_attempts == service.settings.max_attempts


def test_a_chunk_whose_workers_keep_dying_fails_after_the_cap(service: Service) -> None:
    """A chunk claimed max_attempts times by workers that died ends failed, not looping."""
    job_id = _job(service, service.new_key("acme"))
    dispatcher = service.dispatcher
    # Plan only, then make max_attempts claims whose workers vanished (leases already expired).
    dispatcher.discard()
    plan_job(service.context, job_id)
    dispatcher.discard()
    with service.context.db.transaction() as session:
        chunk_id = session.scalars(select(Chunk.id).where(Chunk.job_id == job_id)).one()
    for _ in range(service.settings.max_attempts):
        with service.context.db.transaction() as session:
            assert claim_chunk(session, chunk_id, lease_seconds=0) is not None
    dispatcher.infer(chunk_id)
    dispatcher.drain()
    job = _job_row(service, job_id)
    assert job.status == "failed"
    assert job.error_code == "attempts_exhausted"
    assert "the worker was lost" in (job.error_message or "")


def test_reconciler_resends_lost_plan_messages_and_releases_scheduled_jobs(
    make_service: object,
) -> None:
    """A queued job whose message was lost and a scheduled job now due are both run."""
    service: Service = make_service(reconcile_grace_seconds=60)  # type: ignore[operator]
    key = service.new_key("acme")
    lost = _job(service, key)
    due = _job(service, key)
    service.dispatcher.discard()  # both plan messages are lost
    past = utcnow() - timedelta(minutes=5)
    with service.context.db.transaction() as session:
        session.execute(update(Job).where(Job.id == lost).values(enqueued_at=past))
        session.execute(
            update(Job).where(Job.id == due).values(status="scheduled", not_before=past)
        )
    report = reconcile(service.context)
    assert set(report.plans) == {lost, due}
    assert report.released == [due]
    assert reconcile(service.context).total == 0  # re-sent once per grace period, not every pass
    service.dispatcher.drain()
    assert _job_row(service, lost).status == "succeeded"
    assert _job_row(service, due).status == "succeeded"


def test_stage_logs_carry_job_chunk_and_attempt(service: Service) -> None:
    """Events logged while a chunk runs are bound to its job id, chunk id and attempt."""
    import structlog
    from structlog.testing import capture_logs

    job_id = _job(service, service.new_key("acme"))
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        service.dispatcher.drain()
    done = [e for e in logs if e["event"] == "job.chunk.done"]
    assert len(done) == 1
    assert done[0]["job_id"] == job_id
    assert done[0]["chunk_id"].startswith("chk_")
    assert done[0]["attempt"] == 1
    assert any(e["event"] == "job.succeeded" and e["job_id"] == job_id for e in logs)
