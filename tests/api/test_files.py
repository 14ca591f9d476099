"""Uploads: stored under id-derived keys with a sha256, capped (413), sniffed (415)."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from core.db.models import File
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service


def test_upload_records_metadata_and_returns_the_same_bytes(service: Service) -> None:
    """An uploaded PDF gets an id, its size, sha256 and sniffed type, and reads back intact."""
    key = service.new_key("acme")
    data = pdf_bytes(OBSERVATORY_PAGES)
    response = service.client.post(
        "/v1/files", files={"file": ("../../etc/report.pdf", data)}, headers=service.headers(key)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["content_type"] == "application/pdf"
    assert body["filename"] == "report.pdf"
    meta = service.client.get(f"/v1/files/{body['id']}", headers=service.headers(key))
    assert meta.json() == body
    content = service.client.get(f"/v1/files/{body['id']}/content", headers=service.headers(key))
    assert content.content == data
    with service.context.db.transaction() as session:
        row = session.get_one(File, body["id"])
        assert row.storage_key == f"tenants/{row.tenant_id}/files/{row.id}"


def test_oversized_upload_is_413_and_keeps_nothing(make_service: object) -> None:
    """A file past the upload cap answers 413 and leaves no file row behind."""
    service: Service = make_service(max_upload_bytes=1000)  # type: ignore[operator]
    key = service.new_key("acme")
    response = service.client.post(
        "/v1/files", files={"file": ("big.txt", b"a" * 5000)}, headers=service.headers(key)
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    with service.context.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(File)) == 0


def test_unsupported_file_is_415(service: Service) -> None:
    """Bytes no job kind can read are refused with 415 unsupported_media."""
    key = service.new_key("acme")
    response = service.client.post(
        "/v1/files",
        files={"file": ("blob.bin", bytes(range(256)) * 8)},
        headers=service.headers(key),
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media"


def test_upload_without_file_field_is_400(service: Service) -> None:
    """A multipart form without a `file` part is a 400 with a message saying what to send."""
    key = service.new_key("acme")
    response = service.client.post(
        "/v1/files", data={"other": "x"}, files={"nope": ("", b"")}, headers=service.headers(key)
    )
    assert response.status_code == 400
    assert "file" in response.json()["error"]["message"]


def test_requests_without_a_valid_key_are_401(service: Service) -> None:
    """No key, an unknown key, and a revoked key are all refused with 401."""
    from core.auth import revoke_key

    key = service.new_key("acme")
    assert service.client.get("/v1/jobs").status_code == 401
    assert service.client.get("/v1/jobs", headers=service.headers("no_unknown")).status_code == 401
    assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 200
    with service.context.db.transaction() as session:
        assert revoke_key(session, key[:8]) == 1
    assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 401
