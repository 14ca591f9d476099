"""Hostile uploads: file names never reach keys or paths, abusive multipart bodies are refused
fast, and presigned URLs expire and open only the object they were made for."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.files import clean_filename
from core.storage import S3Store
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service

BOUNDARY = "nightowl-test-boundary"
HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/abs/path/report.pdf",
    "a\x00b.pdf",
    "y" * 300 + ".pdf",
    "....",
    ".",
    "..",
    "invoice\u202efdp.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as invoiceexe.pdf
    "\u200fhidden\u2066name\u2069.pdf",
    "tab\tand\x1b[31mescape\x7f.pdf",
    "",
]


def _multipart(parts: list[bytes]) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


def _part(disposition: bytes, data: bytes) -> bytes:
    return b"Content-Disposition: form-data; " + disposition + b"\r\n\r\n" + data


def _post(service: Service, key: str, body: bytes) -> httpx.Response:
    headers = service.headers(key) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return service.client.post("/v1/files", content=body, headers=headers)


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_hostile_file_names_are_cleaned_and_never_reach_keys_or_paths(
    service: Service, tmp_path: Path
) -> None:
    """Each hostile name (sent raw in the multipart header) is stored under an id-derived key,
    shown back cleaned (one component, no control or bidi characters, at most 255 characters),
    and writes nothing outside the object store; a 10,000-character name is a 400."""
    key = service.new_key("acme")
    data = pdf_bytes(OBSERVATORY_PAGES)
    before = _files_under(tmp_path)
    for name in HOSTILE_NAMES:
        raw = name.encode("utf-8").replace(b'"', b"%22")
        response = _post(
            service, key, _multipart([_part(b'name="file"; filename="' + raw + b'"', data)])
        )
        assert response.status_code == 201, (name[:40], response.text)
        body = response.json()
        shown = body["filename"]
        assert shown == clean_filename(name)
        assert 0 < len(shown) <= 255
        assert "/" not in shown and "\\" not in shown and shown not in (".", "..")
        assert not any(ord(c) < 32 or c in "\u202e\u200f\u2066\u2069\x7f" for c in shown)
        stored = service.client.get(f"/v1/files/{body['id']}", headers=service.headers(key))
        assert stored.json()["filename"] == shown
        with service.context.db.transaction() as session:
            from core.db.models import File

            row = session.get_one(File, body["id"])
            assert row.storage_key == f"tenants/{row.tenant_id}/files/{row.id}"
    # A 10,000-character name passes the multipart parser's header cap: refused whole, 400.
    raw = b"x" * 10_000 + b".pdf"
    huge = _post(service, key, _multipart([_part(b'name="file"; filename="' + raw + b'"', data)]))
    assert huge.status_code == 400, huge.text
    assert "header" in huge.json()["error"]["message"]
    written = _files_under(tmp_path) - before
    allowed = (service.settings.storage_dir.resolve(), service.settings.home.resolve())
    assert all(
        p.resolve().is_relative_to(allowed[0]) or p.parent.resolve() == allowed[1] for p in written
    ), sorted(written)
    store = service.context.store
    if isinstance(store, S3Store):  # the bucket is shared: other tests' keys are there too
        keys = [
            o["Key"]
            for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
            for o in page.get("Contents", [])
        ]
        mine = [k for k in keys if k.startswith(f"tenants/{row.tenant_id}/")]
        assert len(mine) == len(HOSTILE_NAMES)
        assert all(k.startswith(f"tenants/{row.tenant_id}/files/file_") for k in mine)
        assert not any(k.startswith(("etc/", "abs/", "/")) or "passwd" in k for k in keys)


def test_thousands_of_small_fields_are_refused_fast(service: Service) -> None:
    """5,000 tiny form fields before the file answer 400 within a second, and nothing is kept."""
    key = service.new_key("acme")
    parts = [_part(f'name="f{n}"'.encode(), b"x") for n in range(5000)]
    parts.append(_part(b'name="file"; filename="a.pdf"', pdf_bytes(OBSERVATORY_PAGES)))
    started = time.monotonic()
    response = _post(service, key, _multipart(parts))
    assert response.status_code == 400, response.text
    assert "too many form fields" in response.json()["error"]["message"]
    assert time.monotonic() - started < 1.0
    assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 200


@pytest.mark.parametrize("disposition", [b'name="file"', b'name="notes"'])
def test_a_huge_field_without_a_file_name_is_413_fast(service: Service, disposition: bytes) -> None:
    """A 20 MB form field that is not a file (even one named `file`) is 413 within 2 s."""
    key = service.new_key("acme")
    started = time.monotonic()
    response = _post(service, key, _multipart([_part(disposition, b"a" * 20_000_000)]))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert time.monotonic() - started < 2.0


def test_malformed_multipart_is_400(service: Service) -> None:
    """A body that does not parse as multipart is a 400, not a 500."""
    key = service.new_key("acme")
    response = _post(service, key, b"--" + BOUNDARY.encode() + b"\r\nbroken\x00\r\n\r\n")
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
def test_presigned_urls_expire_and_open_only_their_key(make_service: Any) -> None:
    """A presigned URL carries the configured expiry and opens its object; with another key
    in it, the signature fails; once expired, it fails too."""
    service: Service = make_service(presign_expiry_seconds=10)
    store = service.context.store
    assert isinstance(store, S3Store)
    mine, theirs = "tenants/ten_a/jobs/job_a/answers.md", "tenants/ten_b/jobs/job_b/answers.md"
    store.put_bytes(mine, b"alice's answers", "text/markdown")
    store.put_bytes(theirs, b"bob's answers", "text/markdown")
    url = store.presigned_url(mine, filename="answers.md")
    assert url is not None and "X-Amz-Expires=10" in url
    assert httpx.get(url).content == b"alice's answers"
    forged = httpx.get(url.replace("ten_a/jobs/job_a", "ten_b/jobs/job_b"))
    assert forged.status_code == 403
    assert b"bob's answers" not in forged.content
    # A 1-s expiry, to watch it lapse without a long wait (that the same signing works before
    # expiry is shown by the 10-s URL above; a 1-s URL may lapse before a slow first request).
    short = store.presign_client.generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": mine}, ExpiresIn=1
    )
    time.sleep(2.5)
    expired = httpx.get(short)
    assert expired.status_code == 403
    assert b"alice's answers" not in expired.content
