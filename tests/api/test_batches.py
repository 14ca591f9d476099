"""Batches in the OpenAI Batch API shape, run by the in-process dispatcher on both backends."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.db.types import utcnow
from testkit.media_samples import tone_bursts, write_audio
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service
from worker.reconcile import reconcile


def _upload(service: Service, key: str, name: str, data: bytes) -> str:
    response = service.client.post(
        "/v1/files", files={"file": (name, data)}, headers=service.headers(key)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _line(custom_id: str, kind: str, file_id: str, params: dict[str, Any]) -> str:
    body = {"kind": kind, "input": {"file_id": file_id}, "params": params}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/jobs", "body": body})


def _batch(service: Service, key: str, lines: list[str], window: str = "24h") -> Any:
    file_id = _upload(service, key, "batch.jsonl", ("\n".join(lines) + "\n").encode())
    body = {"input_file_id": file_id, "endpoint": "/v1/jobs", "completion_window": window}
    response = service.client.post("/v1/batches", json=body, headers=service.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def _get(service: Service, key: str, path: str) -> Any:
    response = service.client.get(path, headers=service.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def _jsonl(service: Service, key: str, file_id: str) -> list[dict[str, Any]]:
    response = service.client.get(f"/v1/files/{file_id}/content", headers=service.headers(key))
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_bad_line_is_reported_with_its_number_and_nothing_runs(service: Service) -> None:
    """Malformed JSON, duplicate ids, unknown kinds, missing inputs, wrong urls: all reported."""
    key = service.new_key("acme")
    pdf = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    good = _line("a", "document.qa", pdf, {"questions": ["q"]})
    lines = [
        good,
        "{not json",
        _line("a", "document.qa", pdf, {"questions": ["q"]}),
        _line("c", "image.paint", pdf, {}),
        _line("d", "document.qa", "file_missing", {"questions": ["q"]}),
        json.dumps({"custom_id": "e", "method": "GET", "url": "/v1/jobs", "body": {}}),
        "",
        _line("f", "document.qa", pdf, {"questions": []}),
    ]
    batch = _batch(service, key, lines)
    assert batch["status"] == "failed"
    errors = batch["errors"]["data"]
    assert [(e["line"], e["code"]) for e in errors] == [
        (2, "invalid_json"),
        (3, "duplicate_custom_id"),
        (4, "unprocessable"),
        (5, "not_found"),
        (6, "invalid_url"),
        (8, "unprocessable"),
    ]
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    listed = _get(service, key, f"/v1/jobs?batch_id={batch['id']}")
    assert listed["data"] == []
    assert service.dispatcher.pending() == []


def test_a_mixed_batch_completes_with_counts_and_output_and_error_files(
    service: Service, tmp_path: Path
) -> None:
    """Document, audio and a corrupt line: two results in the output file, one in the errors."""
    key = service.new_key("acme")
    pdf = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    wav_path = write_audio(tmp_path / "a.wav", tone_bursts([(1, 4)], 6.0), container="wav")
    wav = _upload(service, key, "a.wav", wav_path.read_bytes())
    broken = _upload(service, key, "b.pdf", pdf_bytes(OBSERVATORY_PAGES)[:400])
    batch = _batch(
        service,
        key,
        [
            _line("doc", "document.qa", pdf, {"questions": ["Who founded it?"]}),
            _line("talk", "audio.transcribe", wav, {}),
            _line("bad", "document.qa", broken, {"questions": ["Anything?"]}),
        ],
    )
    assert batch["status"] == "in_progress"
    assert batch["request_counts"]["total"] == 3
    jobs = _get(service, key, f"/v1/jobs?batch_id={batch['id']}")["data"]
    assert sorted(j["custom_id"] for j in jobs) == ["bad", "doc", "talk"]
    assert {j["priority"] for j in jobs} == {service.settings.batch_priority}
    service.dispatcher.drain()
    batch = _get(service, key, f"/v1/batches/{batch['id']}")
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert batch["completed_at"] >= batch["in_progress_at"] >= batch["created_at"]
    output = _jsonl(service, key, batch["output_file_id"])
    assert sorted(line["custom_id"] for line in output) == ["doc", "talk"]
    assert all(line["response"]["status_code"] == 200 for line in output)
    talk = next(line for line in output if line["custom_id"] == "talk")
    assert "transcript.srt" in talk["response"]["body"]["artifacts"]
    errors = _jsonl(service, key, batch["error_file_id"])
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("bad", "invalid_input")]
    retried = service.client.post(
        f"/v1/batches/{batch['id']}/retry", headers=service.headers(key)
    ).json()
    assert retried["retry_of"] == batch["id"] and retried["request_counts"]["total"] == 1
    retried_jobs = _get(service, key, f"/v1/jobs?batch_id={retried['id']}")["data"]
    assert [j["custom_id"] for j in retried_jobs] == ["bad"]


def test_an_expired_batch_moves_unfinished_lines_to_the_error_file(service: Service) -> None:
    """When the completion window ends, lines not done are expired and reported as errors."""
    key = service.new_key("acme")
    pdf = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    batch = _batch(
        service,
        key,
        [_line(f"r{i}", "document.qa", pdf, {"questions": ["q"]}) for i in range(3)],
        window="1h",
    )
    service.dispatcher.discard()  # no worker got to them
    reconcile(service.context, now=utcnow() + timedelta(minutes=30))
    assert _get(service, key, f"/v1/batches/{batch['id']}")["status"] == "in_progress"
    reconcile(service.context, now=utcnow() + timedelta(hours=2))
    batch = _get(service, key, f"/v1/batches/{batch['id']}")
    assert batch["status"] == "expired" and batch["expired_at"]
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    errors = _jsonl(service, key, batch["error_file_id"])
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert batch["output_file_id"] is None


def test_cancel_keeps_finished_lines(service: Service) -> None:
    """Cancelling after the first line finished keeps it in the output; the rest are cancelled."""
    key = service.new_key("acme")
    pdf = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    batch = _batch(
        service, key, [_line(f"r{i}", "document.qa", pdf, {"questions": ["q"]}) for i in range(3)]
    )
    cancelled: list[Any] = []

    def cancel_after_first_success(step: str, _id: str) -> None:
        if step == "finalize" and not cancelled:
            response = service.client.post(
                f"/v1/batches/{batch['id']}/cancel", headers=service.headers(key)
            )
            cancelled.append(response.json())

    service.dispatcher.drain(cancel_after_first_success)
    assert cancelled[0]["status"] == "cancelling"
    final = _get(service, key, f"/v1/batches/{batch['id']}")
    assert final["status"] == "cancelled"
    counts = final["request_counts"]
    assert counts["completed"] >= 1 and counts["completed"] + counts["failed"] == 3
    assert len(_jsonl(service, key, final["output_file_id"])) == counts["completed"]
    again = service.client.post(f"/v1/batches/{batch['id']}/cancel", headers=service.headers(key))
    assert again.status_code == 200


def test_batches_of_another_tenant_answer_404(service: Service) -> None:
    """Get, cancel, retry and the input file of another tenant's batch are all 404."""
    alice, mallory = service.new_key("alice"), service.new_key("mallory")
    pdf = _upload(service, alice, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    batch = _batch(service, alice, [_line("x", "document.qa", pdf, {"questions": ["q"]})])
    for method, path in [
        ("GET", f"/v1/batches/{batch['id']}"),
        ("POST", f"/v1/batches/{batch['id']}/cancel"),
        ("POST", f"/v1/batches/{batch['id']}/retry"),
    ]:
        response = service.client.request(method, path, headers=service.headers(mallory))
        assert response.status_code == 404, (path, response.text)
    assert _get(service, mallory, "/v1/batches")["data"] == []
    body = {"input_file_id": batch["input_file_id"], "endpoint": "/v1/jobs"}
    stolen = service.client.post("/v1/batches", json=body, headers=service.headers(mallory))
    assert stolen.status_code == 404
    bad_window = body | {"completion_window": "soon"}
    response = service.client.post("/v1/batches", json=bad_window, headers=service.headers(alice))
    assert response.status_code == 422


def test_a_line_may_set_its_own_priority(service: Service) -> None:
    """Lines default to the batch priority; a line's explicit priority is kept."""
    key = service.new_key("acme")
    pdf = _upload(service, key, "o.pdf", pdf_bytes(OBSERVATORY_PAGES))
    urgent = json.loads(_line("urgent", "document.qa", pdf, {"questions": ["q"]}))
    urgent["body"]["priority"] = 8
    batch = _batch(
        service, key, [_line("plain", "document.qa", pdf, {"questions": ["q"]}), json.dumps(urgent)]
    )
    jobs = _get(service, key, f"/v1/jobs?batch_id={batch['id']}")["data"]
    priorities = {j["custom_id"]: j["priority"] for j in jobs}
    assert priorities == {"plain": service.settings.batch_priority, "urgent": 8}
