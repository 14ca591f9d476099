"""The state machine on both databases: claims, leases, stale writes, fan-in, attempts cap."""

from __future__ import annotations

import threading
from datetime import timedelta

from core.db.models import Chunk, File, Job, Tenant
from core.db.types import new_id, utcnow
from core.state import (
    Claim,
    claim_chunk,
    claim_chunks,
    claim_job,
    complete_chunk,
    renew_leases,
    save_plan,
)
from core.windows import StartGate, parse_windows
from tests.fixtures.backends import Service


def _tenant(service: Service) -> str:
    with service.context.db.transaction() as session:
        tenant = Tenant(id=new_id("ten"), name=new_id("t"))
        session.add(tenant)
        return tenant.id


def _planned_job(
    service: Service,
    chunks: int,
    *,
    tenant_id: str | None = None,
    priority: int = 5,
    window: str | None = None,
) -> tuple[str, list[str]]:
    """A running job with `chunks` pending chunks, written straight into SQL."""
    tenant_id = tenant_id or _tenant(service)
    with service.context.db.transaction() as session:
        file = File(
            id=new_id("file"),
            tenant_id=tenant_id,
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
            tenant_id=tenant_id,
            kind="document.qa",
            status="queued",
            priority=priority,
            window=window,
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


def test_a_batch_claim_takes_priority_then_tenant_turns_then_age(service: Service) -> None:
    """Higher priority first; among equals each tenant's n-th chunk before any (n+1)-th, the
    older first."""
    busy, quiet = _tenant(service), _tenant(service)
    _, busy_ids = _planned_job(service, 4, tenant_id=busy)
    _, quiet_ids = _planned_job(service, 2, tenant_id=quiet)
    _, urgent_ids = _planned_job(service, 1, tenant_id=busy, priority=9)
    with service.context.db.transaction() as session:
        claims = claim_chunks(session, 4, lease_seconds=60)
    taken = {claim.id for claim in claims}
    # Turns at priority 5: busy 1, quiet 1, then busy 2 (older job) before quiet 2.
    assert taken == {urgent_ids[0], busy_ids[0], quiet_ids[0], busy_ids[1]}
    assert all(claim.attempt == 1 for claim in claims)
    # Busy now runs three chunks and quiet one: quiet's next chunk comes first.
    with service.context.db.transaction() as session:
        (claim,) = claim_chunks(session, 1, lease_seconds=60)
        assert claim.id == quiet_ids[1]
        assert session.get_one(Chunk, claim.id).status == "running"


def test_a_batch_claim_skips_closed_windows_taken_chunks_and_stopped_jobs(
    service: Service,
) -> None:
    """Only ready chunks of running jobs whose window is open are claimed, each once."""
    windows = parse_windows({"night": "22:00-06:00"}, "UTC")
    noon = utcnow().replace(hour=12, minute=0)
    _, (night_chunk,) = _planned_job(service, 1, window="night")
    _, (day_chunk, held_chunk) = _planned_job(service, 2)
    with service.context.db.transaction() as session:
        assert claim_chunk(session, held_chunk, lease_seconds=60) is not None
    with service.context.db.transaction() as session:
        gate = StartGate.at(windows, noon)
        claims = claim_chunks(session, 10, 60, window_open=gate.allows_window())
    assert [claim.id for claim in claims] == [day_chunk]
    with service.context.db.transaction() as session:
        assert claim_chunks(session, 10, 60, window_open=gate.allows_window()) == []
        later = StartGate.at(windows, noon.replace(hour=23))
        assert [c.id for c in claim_chunks(session, 10, 60, window_open=later.allows_window())] == [
            night_chunk
        ]


def test_concurrent_batch_claims_never_take_the_same_chunk(service: Service) -> None:
    """Two hosts claiming at the same moment get disjoint sets (SKIP LOCKED on PostgreSQL)."""
    _, ids = _planned_job(service, 12)
    barrier = threading.Barrier(2)
    taken: list[list[str]] = []

    def host() -> None:
        barrier.wait()
        for _ in range(4):
            with service.context.db.transaction() as session:
                taken.append([claim.id for claim in claim_chunks(session, 3, 60)])

    threads = [threading.Thread(target=host) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [chunk_id for batch in taken for chunk_id in batch]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) == set(ids)


def test_heartbeats_keep_a_long_chunk_and_a_lost_claim_is_not_renewed(service: Service) -> None:
    """Renewed leases outlive the first lease; a claim taken over after expiry is not renewed."""
    _, (kept, lost) = _planned_job(service, 2)
    now = utcnow()
    with service.context.db.transaction() as session:
        claims = claim_chunks(session, 2, lease_seconds=30, now=now)
    later = now + timedelta(seconds=25)
    with service.context.db.transaction() as session:
        renewed = renew_leases(session, claims, 30, now=later)
    assert sorted(c.id for c in renewed) == sorted([kept, lost])
    assert all(c.lease_until == later + timedelta(seconds=30) for c in renewed)
    # Past the first lease but within the renewed one, nobody can take them.
    with service.context.db.transaction() as session:
        assert claim_chunks(session, 2, 60, now=now + timedelta(seconds=40)) == []
    # Another host takes `lost` after the renewed lease expired; renewing it then fails.
    expired = later + timedelta(seconds=31)
    with service.context.db.transaction() as session:
        assert claim_chunk(session, lost, 60, now=expired) is not None
    with service.context.db.transaction() as session:
        kept_claim = [c for c in renewed if c.id == kept]
        assert [c.id for c in renew_leases(session, renewed, 30, now=expired)] == [kept]
        assert kept_claim
