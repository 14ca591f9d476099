"""The host loop (NIGHTOWL_HOST_LOOP): many chunks at once from SQL, batched on the model, with
heartbeats, and the same results as one chunk at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from structlog.testing import capture_logs

from core.db.models import Chunk
from core.state import claim_chunk
from testkit.media_samples import tone_bursts, write_audio
from tests.fixtures.backends import Service

BURSTS = [(0.5, 9.0), (10.5, 19.0), (20.5, 27.0)]


def _submit(service: Service, key: str, file_id: str, seconds: int) -> str:
    params = {"window_seconds": seconds, "max_tokens": 12}
    body = {"kind": "audio.transcribe", "input": {"file_id": file_id}, "params": params}
    created = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def _results(service: Service, key: str, job_ids: list[str]) -> list[Any]:
    results = []
    for job_id in job_ids:
        job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
        assert job["status"] == "succeeded", job
        result = service.client.get(f"/v1/jobs/{job_id}/result", headers=service.headers(key))
        results.append(result.json()["segments"])
    return results


def _jobs(service: Service, tmp_path: Path) -> tuple[str, list[str]]:
    key = service.new_key("acme")
    path = write_audio(
        tmp_path / f"talk{id(service)}.wav", tone_bursts(BURSTS, 28.0), container="wav"
    )
    file_id = service.upload(key, path)
    return key, [_submit(service, key, file_id, seconds) for seconds in (10, 12, 15)]


def test_the_host_loop_batches_chunks_of_several_jobs_with_the_same_results(
    make_service: Any, tmp_path: Path
) -> None:
    """Three jobs' clips run as one batch on one host, and every transcript equals the one a
    host running one chunk at a time produces."""
    plain: Service = make_service()
    looped: Service = make_service(host_loop=True, max_batch=8)
    key, job_ids = _jobs(plain, tmp_path)
    plain.dispatcher.drain()
    expected = _results(plain, key, job_ids)

    key, job_ids = _jobs(looped, tmp_path)
    with capture_logs() as logs:
        looped.dispatcher.drain()
    assert _results(looped, key, job_ids) == expected
    loops = [e for e in logs if e["event"] == "host.loop.done"]
    assert loops and loops[0]["chunks"] >= 6 and loops[0]["peak_rows"] > 1
    assert sum(e["chunks"] for e in loops) == len(
        [e for e in logs if e["event"] == "job.chunk.done"]
    )
    with looped.context.db.transaction() as session:
        attempts = session.scalars(select(Chunk.attempt).where(Chunk.job_id.in_(job_ids)))
        assert set(attempts) == {1}  # each chunk ran once
    assert looped.context.engine().loop is None  # the engine is back to one call at a time


def test_heartbeats_keep_a_chunk_that_runs_longer_than_its_lease(
    make_service: Any, tmp_path: Path
) -> None:
    """With a 1-s lease and a chunk held 2.5 s, the lease is renewed: nobody can take it."""
    service: Service = make_service(host_loop=True, lease_seconds=1, fault_chunk_delay_seconds=2.5)
    key, job_ids = _jobs(service, tmp_path)
    taken: list[bool] = []
    stop = threading.Event()

    def running() -> list[str]:
        with service.context.db.transaction() as session:
            return list(session.scalars(select(Chunk.id).where(Chunk.status == "running")))

    def rival() -> None:
        deadline = time.monotonic() + 60
        while not (held := running()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # past the first lease, still inside the 2.5-s hold
        with service.context.db.transaction() as session:
            taken.extend(claim_chunk(session, c, 60) is not None for c in held)
        stop.set()

    thread = threading.Thread(target=rival)
    thread.start()
    service.dispatcher.drain()
    thread.join()
    assert stop.is_set() and taken and not any(taken)
    _results(service, key, job_ids)
