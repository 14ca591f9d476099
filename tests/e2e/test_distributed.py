"""End to end over HTTP: API, broker (Valkey), Celery workers (solo pool, tiny model), SQL, storage.

Everything runs as real processes: uvicorn, `celery worker`, `celery beat`, against the
services started by the test fixtures. The SQLite + local folder variant shares the files
between processes, as on a single machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from core.auth import create_key
from core.db import Database
from core.db.models import Chunk, Job
from core.settings import Settings
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from testkit.stack import Stack
from tests.fixtures.backends import backend_settings

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    tiny_model: object,
    tiny_models_dir: Path,
    redis_url: str,
) -> Iterator[Stack]:
    """Settings for this backend with the test Valkey, and a stack that stops what it started."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings = backend_settings(
        request,
        backend,
        tmp_path / "home",
        tiny_models_dir,
        redis_url=redis_url,
        lease_seconds=4,
        reconcile_interval_seconds=1.0,
        reconcile_grace_seconds=1.0,
        visibility_timeout_seconds=30,
    )
    stack = Stack(settings, tmp_path)
    yield stack
    stack.stop()
    client.flushdb()


def _key(settings: Settings, tenant: str) -> dict[str, str]:
    db = Database(settings.sqlalchemy_url)
    with db.transaction() as session:
        key = create_key(session, tenant)
    db.dispose()
    return {"Authorization": f"Bearer {key}"}


def _submit(stack: Stack, headers: dict[str, str], questions: list[str]) -> str:
    files = {"file": ("observatory.pdf", pdf_bytes(OBSERVATORY_PAGES))}
    upload = httpx.post(f"{stack.api_url}/v1/files", files=files, headers=headers)
    assert upload.status_code == 201, upload.text
    body = {
        "kind": "document.qa",
        "input": {"file_id": upload.json()["id"]},
        "params": {"questions": questions, "speculative": True},
    }
    created = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=headers)
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def _wait_for(stack: Stack, headers: dict[str, str], job_id: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in stack.processes)
    raise AssertionError(f"job {job_id} did not finish: {job}\n{logs}")


def _chunks(settings: Settings, job_id: str) -> list[Chunk]:
    db = Database(settings.sqlalchemy_url)
    with db.transaction() as session:
        rows = list(session.scalars(select(Chunk).where(Chunk.job_id == job_id)))
    db.dispose()
    return rows


def test_document_qa_over_http_with_a_real_worker(stack: Stack) -> None:
    """Upload a PDF, ask two questions, poll to `succeeded`; result, artifacts, usage check out."""
    stack.start_api()
    stack.start_worker("w1")
    ready = httpx.get(f"{stack.api_url}/readyz").json()
    assert ready == {
        "status": "ok",
        "checks": dict.fromkeys(["database", "storage", "broker"], "ok"),
    }
    headers = _key(stack.settings, "acme")
    questions = ["Who founded the observatory?", "When does the season run?"]
    job_id = _submit(stack, headers, questions)
    job = _wait_for(stack, headers, job_id)
    assert job["status"] == "succeeded", job
    usage = job["usage"]
    assert usage["prompt_tokens"] > 100 and 0 < usage["generated_tokens"] <= 2 * 24
    assert usage["prefill_tokens_saved"] > 0
    assert usage["draft_rounds"] > 0 and usage["decode_tokens_per_second"] > 0
    assert usage["peak_memory_bytes"] > 0
    result = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}/result", headers=headers).json()
    assert [a["question"] for a in result["answers"]] == questions
    assert result["document"]["pages"] == 3
    assert set(result["artifacts"]) == {"answers.md", "result.json"}
    artifact = httpx.get(
        f"{stack.api_url}/v1/jobs/{job_id}/artifacts/answers.md",
        headers=headers,
        follow_redirects=True,
    )
    assert artifact.status_code == 200 and questions[0] in artifact.text
    settings = stack.settings
    if settings.s3_bucket:
        from core.storage import make_store

        store = make_store(settings)
        with Database(settings.sqlalchemy_url).transaction() as session:
            row = session.get_one(Job, job_id)
            keys = dict(row.artifacts or {})
        assert all(store.exists(k) for k in keys.values())
        assert keys["answers.md"] == f"tenants/{row.tenant_id}/jobs/{job_id}/answers.md"


def test_a_worker_killed_mid_chunk_still_completes_the_job_once(stack: Stack) -> None:
    """SIGKILL a worker while it holds a chunk: another worker finishes it, exactly once."""
    stack.start_api()
    stack.start_beat()
    doomed = stack.start_worker("doomed", fault_chunk_delay_seconds=60.0)
    headers = _key(stack.settings, "acme")
    job_id = _submit(stack, headers, ["Who founded the observatory?"])
    deadline = time.monotonic() + 60
    while not any(c.status == "running" for c in _chunks(stack.settings, job_id)):
        assert time.monotonic() < deadline, doomed.tail()
        time.sleep(0.2)
    doomed.kill()
    stack.start_worker("rescuer")
    job = _wait_for(stack, headers, job_id)
    assert job["status"] == "succeeded", job
    (chunk,) = _chunks(stack.settings, job_id)
    assert chunk.status == "done"
    assert chunk.attempt >= 2  # the killed claim, then the one that finished
    # One result: the job flipped to succeeded once, and its answers are there once.
    result = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}/result", headers=headers).json()
    assert len(result["answers"]) == 1


def test_a_lost_message_is_recovered_by_the_reconciler(stack: Stack, redis_url: str) -> None:
    """A job whose queue message vanished (broker wiped) still runs, re-sent by the reconciler."""
    stack.start_api()
    headers = _key(stack.settings, "acme")
    job_id = _submit(stack, headers, ["What was discovered in 2019?"])
    redis.Redis.from_url(redis_url).flushdb()  # the plan message is gone
    stack.start_worker("w1")
    # A job sent after the loss runs to its end: the worker is consuming, and still nothing
    # ran the lost one without the reconciler.
    later = _wait_for(stack, headers, _submit(stack, headers, ["Who founded the observatory?"]))
    assert later["status"] == "succeeded", later
    job = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "queued"
    stack.start_beat()
    job = _wait_for(stack, headers, job_id)
    assert job["status"] == "succeeded", job


def test_a_model_host_that_cannot_load_its_model_refuses_to_start(stack: Stack) -> None:
    """An infer worker whose model is missing exits at start with a message naming the cause."""
    worker = stack.spawn(
        "no-model",
        ["-m", "celery", "-A", "worker.app", "worker", "--pool", "solo", "-Q", "infer"],
        stack.settings.model_copy(update={"model": "/nonexistent/model", "draft_model": None}),
    )
    assert worker.popen.wait(timeout=60) == 3
    assert "cannot load the model: model folder /nonexistent/model does not exist" in worker.tail()


def test_audio_kinds_over_http_with_a_real_worker(stack: Stack, tmp_path: Path) -> None:
    """A recording is transcribed (valid WebVTT) and analysed (cited answers) by a real worker."""
    import io

    import webvtt

    from testkit.media_samples import tone_bursts, write_audio

    stack.start_api()
    stack.start_worker("w1")
    headers = _key(stack.settings, "acme")
    audio = tone_bursts([(1.0, 16.5), (18.5, 33.0), (35.0, 44.0)], 45.0)
    path = write_audio(tmp_path / "meeting.m4a", audio, container="m4a")
    with path.open("rb") as f:
        upload = httpx.post(
            f"{stack.api_url}/v1/files", files={"file": (path.name, f)}, headers=headers
        )
    assert upload.status_code == 201, upload.text
    assert upload.json()["content_type"] == "audio/mp4"
    jobs = {}
    for kind, params in [
        ("audio.transcribe", {"language": "en", "speculative": True}),
        ("audio.analyze", {"questions": ["Who speaks?", "Is anyone angry?"], "speculative": True}),
    ]:
        body = {"kind": kind, "input": {"file_id": upload.json()["id"]}, "params": params}
        created = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=headers)
        assert created.status_code == 202, created.text
        jobs[kind] = created.json()["id"]
    for kind, job_id in jobs.items():
        job = _wait_for(stack, headers, job_id)
        assert job["status"] == "succeeded", (kind, job)
        assert job["usage"]["prompt_tokens"] > 0 and job["usage"]["draft_rounds"] > 0
    transcript = httpx.get(
        f"{stack.api_url}/v1/jobs/{jobs['audio.transcribe']}/result", headers=headers
    ).json()
    assert abs(transcript["duration"] - 45.0) < 0.1
    vtt = httpx.get(
        f"{stack.api_url}/v1/jobs/{jobs['audio.transcribe']}/artifacts/transcript.vtt",
        headers=headers,
        follow_redirects=True,
    )
    captions = webvtt.from_buffer(io.StringIO(vtt.text)).captions
    assert captions and all(c.text.strip() for c in captions)
    analysis = httpx.get(
        f"{stack.api_url}/v1/jobs/{jobs['audio.analyze']}/result", headers=headers
    ).json()
    assert [a["question"] for a in analysis["answers"]] == ["Who speaks?", "Is anyone angry?"]
    assert all(a["evidence"] for a in analysis["answers"])


def test_video_caption_over_http_with_a_real_worker(stack: Stack, tmp_path: Path) -> None:
    """A video with sound is captioned per segment with thumbnails by a real worker."""
    from testkit.media_samples import tone_bursts, write_color_video

    stack.start_api()
    stack.start_worker("w1")
    headers = _key(stack.settings, "acme")
    path = write_color_video(
        tmp_path / "clip.mp4",
        segments=[(6.0, (200, 40, 40)), (6.0, (40, 40, 200))],
        audio=tone_bursts([(1.0, 5.0)], 12.0),
    )
    with path.open("rb") as f:
        upload = httpx.post(
            f"{stack.api_url}/v1/files", files={"file": (path.name, f)}, headers=headers
        )
    assert upload.json()["content_type"] == "video/mp4"
    body = {
        "kind": "video.caption",
        "input": {"file_id": upload.json()["id"]},
        "params": {"fps": 1, "segment_seconds": 6},
    }
    created = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=headers)
    assert created.status_code == 202, created.text
    job = _wait_for(stack, headers, created.json()["id"])
    assert job["status"] == "succeeded", job
    result = httpx.get(f"{stack.api_url}/v1/jobs/{job['id']}/result", headers=headers).json()
    assert [(s["start"], s["end"]) for s in result["timeline"]] == [(0, 6), (6, 12)]
    assert result["with_audio"] is True and result["summary"]
    thumb = httpx.get(
        f"{stack.api_url}/v1/jobs/{job['id']}/artifacts/{result['thumbnails'][1]}",
        headers=headers,
        follow_redirects=True,
    )
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # a JPEG


def test_a_high_priority_job_overtakes_queued_bulk_work(stack: Stack) -> None:
    """With bulk jobs already queued, an interactive job submitted last finishes first."""
    stack.start_api()
    headers = _key(stack.settings, "acme")
    files = {"file": ("observatory.pdf", pdf_bytes(OBSERVATORY_PAGES))}
    file_id = httpx.post(f"{stack.api_url}/v1/files", files=files, headers=headers).json()["id"]

    def submit(priority: int) -> str:
        body = {
            "kind": "document.qa",
            "input": {"file_id": file_id},
            "params": {"questions": ["Who founded it?"]},
            "priority": priority,
        }
        response = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    bulk = [submit(1) for _ in range(4)]
    urgent = submit(9)
    stack.start_worker("w1")  # one worker, started once everything is queued
    finished = {job_id: _wait_for(stack, headers, job_id) for job_id in [*bulk, urgent]}
    assert all(job["status"] == "succeeded" for job in finished.values())
    assert finished[urgent]["finished_at"] < min(finished[j]["finished_at"] for j in bulk)
