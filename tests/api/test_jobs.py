"""Jobs over the API, run by the in-process dispatcher on both backends."""

from __future__ import annotations

import io
import json
import wave
from typing import Any

from sqlalchemy import select

from core.db.models import Chunk, Job
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service

QUESTIONS = ["Who founded the observatory?", "What was discovered in 2019?"]


def _upload(service: Service, key: str, name: str, data: bytes) -> str:
    response = service.client.post(
        "/v1/files", files={"file": (name, data)}, headers=service.headers(key)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _submit(service: Service, key: str, file_id: str, **extra: Any) -> Any:
    body = {
        "kind": "document.qa",
        "input": {"file_id": file_id},
        "params": {"questions": QUESTIONS, "speculative": True},
    }
    return service.client.post("/v1/jobs", json=body | extra, headers=service.headers(key))


def test_document_qa_runs_to_a_cited_result(service: Service) -> None:
    """A 3-page PDF with two questions ends `succeeded` with answers citing real pages."""
    key = service.new_key("acme")
    file_id = _upload(service, key, "observatory.pdf", pdf_bytes(OBSERVATORY_PAGES))
    created = _submit(service, key, file_id)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued"
    service.dispatcher.drain()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 1, "total": 1}
    assert sorted(job["artifacts"]) == ["answers.md", "result.json"]
    usage = job["usage"]
    assert usage["prompt_tokens"] > 0 and usage["generated_tokens"] > 0
    assert usage["generated_tokens"] <= 2 * service.settings.max_tokens
    assert usage["prefill_tokens_saved"] > 0  # whole mode: the document prefix was reused
    assert usage["draft_rounds"] > 0 and usage["draft_tokens_proposed"] > 0
    result = service.client.get(f"/v1/jobs/{job_id}/result", headers=service.headers(key)).json()
    assert [a["question"] for a in result["answers"]] == QUESTIONS
    assert result["document"] == {
        "pages": 3,
        "page_unit": "page",
        "passages": 3,
        "mode": "whole",
        "format": "pdf",
    }
    assert "noise" in result["warning"]
    for answer in result["answers"]:
        assert answer["citations"], answer
        for citation in answer["citations"]:
            page_text = " ".join(OBSERVATORY_PAGES[citation["page"] - 1].split())
            assert " ".join(citation["quote"].split()) in page_text
            assert citation["passage_id"].startswith(f"p{citation['page']}.")
    # The BM25 fallback cites the page that holds the answer's rare terms.
    assert any(c["page"] == 3 for c in result["answers"][1]["citations"])


def test_each_chunk_records_the_hosts_speculation_decision(service: Service) -> None:
    """Without `speculative`, the host decides (auto); the chunk's usage says what and why, and
    the job counts the generations that ran with the drafter."""
    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": {"questions": ["Q?"]}}
    job_id = service.client.post("/v1/jobs", json=body, headers=service.headers(key)).json()["id"]
    service.dispatcher.drain()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
    assert job["status"] == "succeeded", job
    with service.context.db.transaction() as session:
        (record,) = session.scalars(select(Chunk.usage).where(Chunk.job_id == job_id))
    assert record is not None
    (reason,) = record["speculation"]
    assert reason.startswith("auto: ")
    assert record["drafted_calls"] in (0, 1)
    assert record["draft_rounds"] == 0 or record["drafted_calls"] == 1  # no rounds when plain
    assert job["usage"]["drafted_calls"] == record["drafted_calls"]
    assert "speculation" not in job["usage"]


def test_artifacts_stream_from_local_storage_or_redirect_to_s3(service: Service) -> None:
    """answers.md downloads directly (local folder) or through a presigned redirect (S3)."""
    key = service.new_key("acme")
    job_id = _submit(service, key, _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES)))
    job_id = job_id.json()["id"]
    service.dispatcher.drain()
    response = service.client.get(
        f"/v1/jobs/{job_id}/artifacts/answers.md",
        headers=service.headers(key),
        follow_redirects=False,
    )
    if service.settings.s3_bucket:
        assert response.status_code == 307
        import httpx

        text = httpx.get(response.headers["location"]).text
    else:
        assert response.status_code == 200
        text = response.text
    assert text.startswith("# Answers about o.pdf")
    for question in QUESTIONS:
        assert question in text
    missing = service.client.get(
        f"/v1/jobs/{job_id}/artifacts/nothing.txt", headers=service.headers(key)
    )
    assert missing.status_code == 404


def test_long_document_is_answered_from_retrieved_passages(make_service: object) -> None:
    """A document over the context budget is answered per question from BM25 passages."""
    service: Service = make_service(document_context_tokens=600)  # type: ignore[operator]
    key = service.new_key("acme")
    pages = [f"{text} " + "Filler sentence about nothing much. " * 40 for text in OBSERVATORY_PAGES]
    job_id = _submit(service, key, _upload(service, key, "long.pdf", pdf_bytes(pages))).json()["id"]
    service.dispatcher.drain()
    result = service.client.get(f"/v1/jobs/{job_id}/result", headers=service.headers(key)).json()
    assert result["document"]["mode"] == "retrieval"
    with service.context.db.transaction() as session:
        chunk = session.scalars(select(Chunk).where(Chunk.job_id == job_id)).one()
        retrieved = chunk.spec["passages"]["1"]
    # The question about 2019 retrieves a passage of page 3 first.
    assert retrieved[0].startswith("p3.")


def test_corrupt_pdf_fails_with_invalid_input(service: Service) -> None:
    """A truncated PDF ends `failed` with error.code invalid_input and a message."""
    key = service.new_key("acme")
    data = pdf_bytes(OBSERVATORY_PAGES)
    file_id = _upload(service, key, "broken.pdf", data[: len(data) // 3])
    job_id = _submit(service, key, file_id).json()["id"]
    service.dispatcher.drain()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_input"
    assert "PDF" in job["error"]["message"]
    result = service.client.get(f"/v1/jobs/{job_id}/result", headers=service.headers(key))
    assert result.status_code == 409


def test_bad_job_requests_get_the_right_status(service: Service) -> None:
    """Unknown kinds and bad params are 422, a missing file 404, a file the kind cannot read
    (a WAV for document.qa, a PDF for video.caption) 415."""
    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    audio_id = _upload(service, key, "a.wav", wav.getvalue())
    cases = [
        ({"kind": "image.paint"}, 422, "unprocessable"),
        ({"kind": "video.caption", "params": {}}, 415, "unsupported_media"),
        ({"params": {"questions": []}}, 422, "unprocessable"),
        ({"params": {"questions": ["q"], "temperature": 9}}, 422, "unprocessable"),
        ({"input": {"file_id": "file_missing"}}, 404, "not_found"),
        ({"input": {"file_id": audio_id}}, 415, "unsupported_media"),
        ({"priority": 42}, 422, "invalid_request"),
        ({"webhook_url": "http://127.0.0.1/hook"}, 422, "fetch_blocked"),
        ({"input": {"url": "http://10.0.0.1/a.pdf"}}, 422, "fetch_blocked"),
    ]
    for extra, status, code in cases:
        response = _submit(service, key, file_id, **extra)
        assert response.status_code == status, (extra, response.text)
        assert response.json()["error"]["code"] == code
    with service.context.db.transaction() as session:
        assert session.scalars(select(Job)).all() == []


def test_idempotency_key_returns_the_same_job_or_409(service: Service) -> None:
    """The same key and body give the same job once; the same key with another body is 409."""
    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": {"questions": ["a"]}}
    headers = service.headers(key) | {"Idempotency-Key": "k-1"}
    first = service.client.post("/v1/jobs", json=body, headers=headers)
    again = service.client.post("/v1/jobs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    other = body | {"params": {"questions": ["b"]}}
    assert service.client.post("/v1/jobs", json=other, headers=headers).status_code == 409
    assert len(service.dispatcher.pending()) == 1  # one plan message, not two


def test_concurrent_requests_with_one_idempotency_key_make_one_job(service: Service) -> None:
    """Eight simultaneous submissions with the same key and body all return one job."""
    from concurrent.futures import ThreadPoolExecutor

    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": {"questions": ["a"]}}
    headers = service.headers(key) | {"Idempotency-Key": "same"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: service.client.post("/v1/jobs", json=body, headers=headers), range(8)
            )
        )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["id"] for r in responses}) == 1
    with service.context.db.transaction() as session:
        assert len(session.scalars(select(Job)).all()) == 1


def test_another_tenants_ids_answer_404_everywhere(service: Service) -> None:
    """Every endpoint with an id answers 404 with no data to another tenant."""
    alice, mallory = service.new_key("alice"), service.new_key("mallory")
    file_id = _upload(service, alice, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    job_id = _submit(service, alice, file_id).json()["id"]
    service.dispatcher.drain()
    paths = [
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/result"),
        ("GET", f"/v1/jobs/{job_id}/artifacts/answers.md"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
    ]
    for method, path in paths:
        response = service.client.request(method, path, headers=service.headers(mallory))
        assert response.status_code == 404, (path, response.text)
        assert set(response.json()) == {"error"}
        assert job_id not in response.text or "no job" in response.text
    listed = service.client.get("/v1/jobs", headers=service.headers(mallory)).json()
    assert listed["data"] == []
    stolen = _submit(service, mallory, file_id)
    assert stolen.status_code == 404


def test_cancel_stops_chunks_that_have_not_started(make_service: object) -> None:
    """A job cancelled after planning never runs its pending chunks and stays cancelled."""
    service: Service = make_service(questions_per_chunk=1)  # type: ignore[operator]
    key = service.new_key("acme")
    job_id = _submit(service, key, _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES)))
    job_id = job_id.json()["id"]
    steps: list[str] = []

    def cancel_after_first_chunk(step: str, _id: str) -> None:
        steps.append(step)
        if steps.count("infer") == 1 and step == "infer":
            response = service.client.post(
                f"/v1/jobs/{job_id}/cancel", headers=service.headers(key)
            )
            assert response.json()["status"] == "cancelled"

    service.dispatcher.drain(cancel_after_first_chunk)
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()
    assert job["status"] == "cancelled"
    with service.context.db.transaction() as session:
        statuses = sorted(
            c.status for c in session.scalars(select(Chunk).where(Chunk.job_id == job_id))
        )
    assert statuses == ["cancelled", "done"]
    assert "finalize" not in steps
    again = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.headers(key))
    assert again.status_code == 200


def test_list_pages_with_a_cursor(service: Service) -> None:
    """Listing returns newest first, `limit` at a time, following `after` to the end."""
    key = service.new_key("acme")
    file_id = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    ids = [_submit(service, key, file_id).json()["id"] for _ in range(5)]
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = service.client.get("/v1/jobs", params=params, headers=service.headers(key)).json()
        seen += [j["id"] for j in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == list(reversed(ids))
    queued = service.client.get(
        "/v1/jobs", params={"status": "succeeded"}, headers=service.headers(key)
    ).json()
    assert queued["data"] == []
    bogus = service.client.get("/v1/jobs", params={"status": "done"}, headers=service.headers(key))
    assert bogus.status_code == 422


def test_openapi_schema_lists_the_routes(service: Service) -> None:
    """The OpenAPI document is served and names every route of the contract."""
    schema = json.loads(service.client.get("/openapi.json").text)
    for path in ["/v1/files", "/v1/jobs", "/v1/jobs/{job_id}/result", "/readyz", "/healthz"]:
        assert path in schema["paths"]


def test_readyz_checks_every_dependency(service: Service) -> None:
    """readyz answers 200 when the database and storage answer (the broker is in-process)."""
    response = service.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["storage"] == "ok"
