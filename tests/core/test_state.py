"""The state machine on both databases: claims, leases, stale writes, fan-in, attempts cap."""

from __future__ import annotations

import threading
from datetime import timedelta

from core.db.models import Chunk, File, Job, Tenant
from core.db.types import new_id, utcnow
from core.state import Claim, claim_chunk, claim_job, complete_chunk, save_plan
from tests.fixtures.backends import Service


def _planned_job(service: Service, chunks: int) -> tuple[str, list[str]]:
    """A running job with `chunks` pending chunks, written straight into SQL."""
    with service.context.db.transaction() as session:
        tenant = Tenant(id=new_id("ten"), name=new_id("t"))
        session.add(tenant)
        session.flush()
        file = File(
            id=new_id("file"),
            tenant_id=tenant.id,
            filename="x.pdf",
            content_type="application/pdf",
            bytes=1,
            sha256="0" * 64,
            storage_key="k",
        )
        session.add(file)
        session.flush()
        job = Job(
            id=new_id("job"),
            tenant_id=tenant.id,
            kind="document.qa",
            status="queued",
            priority=5,
            input_file_id=file.id,
            spec={"params": {}},
            attempt=0,
            stage_attempts=0,
            chunks_total=0,
            chunks_done=0,
            enqueued_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(job)
        session.flush()
        claim = claim_job(session, job.id, "planning", 60)
        assert claim is not None
        ids = save_plan(session, claim, [{"n": i} for i in range(chunks)])
        assert ids is not None
        return job.id, ids


def test_a_claimed_chunk_cannot_be_claimed_again_until_its_lease_expires(service: Service) -> None:
    """A second claim fails while the lease holds and succeeds, with attempt 2, after it."""
    _, (chunk_id,) = _planned_job(service, 1)
    now = utcnow()
    with service.context.db.transaction() as session:
        first = claim_chunk(session, chunk_id, lease_seconds=30, now=now)
    with service.context.db.transaction() as session:
        later = now + timedelta(seconds=29)
        assert claim_chunk(session, chunk_id, lease_seconds=60, now=later) is None
    with service.context.db.transaction() as session:
        second = claim_chunk(session, chunk_id, lease_seconds=60, now=now + timedelta(seconds=31))
    assert first is not None and second is not None
    assert (first.attempt, second.attempt) == (1, 2)


def test_a_stale_attempt_cannot_write_its_result(service: Service) -> None:
    """After a takeover, the first claim's completion writes nothing; the current one does."""
    job_id, (chunk_id,) = _planned_job(service, 1)
    now = utcnow()
    with service.context.db.transaction() as session:
        stale = claim_chunk(session, chunk_id, lease_seconds=10, now=now)
    with service.context.db.transaction() as session:
        current = claim_chunk(session, chunk_id, lease_seconds=60, now=now + timedelta(seconds=11))
    assert stale is not None and current is not None
    with service.context.db.transaction() as session:
        assert complete_chunk(session, stale, {"from": "stale"}, None) is None
    with service.context.db.transaction() as session:
        assert complete_chunk(session, current, {"from": "current"}, None) == job_id
        chunk = session.get_one(Chunk, chunk_id)
        assert chunk.output == {"from": "current"}
        assert session.get_one(Job, job_id).stage == "finalizing"


def test_concurrent_completions_finalize_exactly_once(service: Service) -> None:
    """Chunks finishing at the same moment in two transactions: exactly one triggers finalize."""
    job_id, ids = _planned_job(service, 2)
    claims: list[Claim] = []
    for chunk_id in ids:
        with service.context.db.transaction() as session:
            claim = claim_chunk(session, chunk_id, lease_seconds=60)
            assert claim is not None
            claims.append(claim)
    results: list[str | None] = []
    barrier = threading.Barrier(2)

    def complete(claim: Claim) -> None:
        barrier.wait()
        with service.context.db.transaction() as session:
            results.append(complete_chunk(session, claim, {}, None))

    threads = [threading.Thread(target=complete, args=(c,)) for c in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [None, job_id]
    with service.context.db.transaction() as session:
        job = session.get_one(Job, job_id)
        assert (job.chunks_done, job.stage) == (2, "finalizing")
