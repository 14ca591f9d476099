"""`url` inputs end to end: submission-time SSRF refusals, then the worker's guarded fetch from a
real HTTP server on 127.0.0.1 (allow-listed), its redirects, caps and failures, on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.models import File, Job
from core.sniff import PDF
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from tests.fixtures.backends import Service
from tests.origin import Origin, Route
from tests.worker.test_stages import FlakyStore

QUESTIONS = {"questions": ["Who founded the observatory?"]}
ALLOW_LOOPBACK = {"fetch_allow_networks": ["127.0.0.1/32"]}


@pytest.fixture
def origin() -> Iterator[Origin]:
    """A running origin server, stopped after the test."""
    server = Origin()
    yield server
    server.close()


def body(data: bytes, *, length: bool = True, status: int = 200) -> Route:
    """A route answering `data`, with or without a Content-Length header."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        if length:
            handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    """A route answering a redirect to `location`."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("location", location)
        handler.send_header("content-length", "0")
        handler.end_headers()

    return route


def endless(handler: BaseHTTPRequestHandler) -> None:
    """A body without Content-Length that never ends (until the client hangs up)."""
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(b"%PDF-1.4\n")
    for _ in range(10_000):  # at most 640 MB, far past any cap in these tests
        handler.wfile.write(b"0" * 65536)


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """A PDF header, then one byte every 50 ms for minutes."""
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(b"%PDF-1.4\n")
    for _ in range(5000):
        handler.wfile.write(b"0")
        handler.wfile.flush()
        time.sleep(0.05)


def silent(handler: BaseHTTPRequestHandler) -> None:
    """No answer for 10 s."""
    time.sleep(10)
    body(b"late")(handler)


def submit(service: Service, key: str, url: str) -> Any:
    """POST a document.qa job over `url`; returns the response."""
    job = {"kind": "document.qa", "input": {"url": url}, "params": QUESTIONS}
    return service.client.post("/v1/jobs", json=job, headers=service.headers(key))


def run(service: Service, url: str) -> dict[str, Any]:
    """Submit a job over `url`, drain the pipeline, return the job as the API shows it."""
    key = service.new_key("acme")
    created = submit(service, key, url)
    assert created.status_code == 202, created.text
    service.dispatcher.drain()
    shown = service.client.get(f"/v1/jobs/{created.json()['id']}", headers=service.headers(key))
    return dict(shown.json())


def count(service: Service, model: type[File] | type[Job]) -> int:
    with service.context.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_served_pdf_is_fetched_into_a_file_and_answered(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """A PDF behind a URL is fetched through the pinned address, stored as a file, and answered."""
    service = make_service(**ALLOW_LOOPBACK)
    pdf = pdf_bytes(OBSERVATORY_PAGES)
    origin.routes["/docs/observatory.pdf"] = body(pdf)
    job = run(service, origin.url("/docs/observatory.pdf"))
    assert job["status"] == "succeeded", job.get("error")
    assert job["input"] == {"url": origin.url("/docs/observatory.pdf")}
    port = origin.url("").rsplit(":", 1)[1]
    assert origin.requests == [("/docs/observatory.pdf", f"127.0.0.1:{port}")]
    with service.context.db.transaction() as session:
        row = session.get_one(Job, job["id"])
        assert row.input_file_id is not None
        file = session.get_one(File, row.input_file_id)
        assert (file.tenant_id, file.content_type) == (row.tenant_id, PDF)
        assert file.filename == "observatory.pdf"
        assert service.context.store.get_bytes(file.storage_key) == pdf


def test_a_redirect_chain_is_followed_hop_by_hop(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """Relative and absolute redirects (302, 301, 307) are followed by hand, each one checked."""
    service = make_service(**ALLOW_LOOPBACK)
    origin.routes["/a"] = redirect("/b")
    origin.routes["/b"] = redirect(origin.url("/c"), 301)
    origin.routes["/c"] = redirect("final.pdf", 307)
    origin.routes["/final.pdf"] = body(pdf_bytes(OBSERVATORY_PAGES))
    job = run(service, origin.url("/a"))
    assert job["status"] == "succeeded", job.get("error")
    assert origin.paths() == ["/a", "/b", "/c", "/final.pdf"]


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("http://127.0.0.2/secret.pdf", "127.0.0.2 is not a public address: loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:{port}/final.pdf", "::1 is not a public address: loopback"),
        ("http://2130706434/secret.pdf", "2130706434 (127.0.0.2) is not a public address"),
        ("http://[::ffff:10.0.0.1]/", "it embeds 10.0.0.1, which is private"),
    ],
)
def test_a_redirect_to_an_internal_address_is_blocked(
    make_service: Callable[..., Service], origin: Origin, location: str, shown: str
) -> None:
    """A redirect to an address outside the allow list fails the job `fetch_blocked`, unfetched."""
    service = make_service(**ALLOW_LOOPBACK)
    port = origin.url("").rsplit(":", 1)[1]
    origin.routes["/start.pdf"] = redirect(location.format(port=port))
    origin.routes["/final.pdf"] = body(pdf_bytes(OBSERVATORY_PAGES))
    job = run(service, origin.url("/start.pdf"))
    assert job["status"] == "failed"
    assert job["error"]["code"] == "fetch_blocked"
    assert shown in job["error"]["message"]
    assert "redirected from" in job["error"]["message"]
    assert origin.paths() == ["/start.pdf"]
    assert count(service, File) == 0


def test_too_many_redirects_fail_the_job(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """A redirect loop stops after `fetch_max_redirects` hops with `fetch_failed`."""
    service = make_service(**ALLOW_LOOPBACK, fetch_max_redirects=3)
    origin.routes["/loop"] = redirect("/loop")
    job = run(service, origin.url("/loop"))
    assert job["status"] == "failed"
    assert job["error"]["code"] == "fetch_failed"
    assert "redirected more than 3 times" in job["error"]["message"]
    assert origin.paths() == ["/loop"] * 4


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (body(b"%PDF-1.4\n" + b"0" * 200_000), "is 200009 bytes; the limit is 100000"),
        (body(b"%PDF-1.4\n" + b"0" * 200_000, length=False), "larger than the limit of 100000"),
        (endless, "larger than the limit of 100000"),
    ],
    ids=["content-length", "no-content-length", "endless"],
)
def test_a_body_over_the_cap_is_too_large_and_not_stored(
    make_service: Callable[..., Service], origin: Origin, route: Route, message: str
) -> None:
    """A body past `max_upload_bytes` (declared, or counted while streaming, even an endless one)
    ends `too_large` at once, without storing anything."""
    service = make_service(**ALLOW_LOOPBACK, max_upload_bytes=100_000)
    origin.routes["/big.pdf"] = route
    started = time.monotonic()
    job = run(service, origin.url("/big.pdf"))
    assert time.monotonic() - started < 10
    assert job["status"] == "failed"
    assert job["error"]["code"] == "too_large"
    assert message in job["error"]["message"]
    assert count(service, File) == 0
    assert not list((service.settings.storage_dir / "tenants").rglob("*"))


@pytest.mark.parametrize(
    ("route", "message"),
    [(silent, "ReadTimeout"), (trickle, "took longer than the time limit")],
    ids=["silent", "trickle"],
)
def test_a_slow_server_hits_the_time_cap(
    make_service: Callable[..., Service], origin: Origin, route: Route, message: str
) -> None:
    """A server that does not answer, or sends a byte at a time, is cut off at the total cap."""
    service = make_service(
        **ALLOW_LOOPBACK, fetch_timeout_seconds=0.5, fetch_total_seconds=1.5, fetch_retries=0
    )
    origin.routes["/slow.pdf"] = route
    started = time.monotonic()
    job = run(service, origin.url("/slow.pdf"))
    assert time.monotonic() - started < 4
    assert job["status"] == "failed"
    assert job["error"]["code"] == "fetch_failed"
    assert message in job["error"]["message"]


def test_a_transient_error_is_retried_then_fetched(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """A 503 is tried again (bounded); the second answer is fetched and the job succeeds."""
    service = make_service(**ALLOW_LOOPBACK, fetch_retries=2)
    answers = [body(b"busy", status=503), body(pdf_bytes(OBSERVATORY_PAGES))]
    origin.routes["/doc.pdf"] = lambda handler: answers.pop(0)(handler)
    job = run(service, origin.url("/doc.pdf"))
    assert job["status"] == "succeeded", job.get("error")
    assert origin.paths() == ["/doc.pdf", "/doc.pdf"]


def test_errors_that_will_not_change_fail_at_once(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """A 404 fails `fetch_failed` after one request; bytes of no known type `unsupported_media`."""
    service = make_service(**ALLOW_LOOPBACK, fetch_retries=2)
    origin.routes["/noise.bin"] = body(bytes(range(256)) * 10)
    missing = run(service, origin.url("/missing.pdf"))
    assert (missing["status"], missing["error"]["code"]) == ("failed", "fetch_failed")
    assert "HTTP 404" in missing["error"]["message"]
    noise = run(service, origin.url("/noise.bin"))
    assert (noise["status"], noise["error"]["code"]) == ("failed", "unsupported_media")
    assert origin.paths() == ["/missing.pdf", "/noise.bin"]
    assert count(service, File) == 0


def test_a_host_that_does_not_resolve_is_accepted_then_fails(
    make_service: Callable[..., Service],
) -> None:
    """An unresolvable host passes submission (DNS may answer by run time) and ends fetch_failed."""
    service = make_service(fetch_retries=0)
    job = run(service, "http://no-such-host.invalid/doc.pdf")
    assert (job["status"], job["error"]["code"]) == ("failed", "fetch_failed")
    assert "does not resolve" in job["error"]["message"]


SUBMISSION_REFUSALS = [
    ("http://2130706433/doc.pdf", "fetch_blocked"),  # decimal 127.0.0.1
    ("http://0177.0.0.1/doc.pdf", "fetch_blocked"),  # octal
    ("http://0x7f000001/doc.pdf", "fetch_blocked"),  # hex
    ("http://127.1/doc.pdf", "fetch_blocked"),  # short form
    ("http://[::ffff:127.0.0.1]/doc.pdf", "fetch_blocked"),  # IPv4-mapped
    ("http://[::1]/doc.pdf", "fetch_blocked"),
    ("http://[fd00::1]/doc.pdf", "fetch_blocked"),  # unique local
    ("http://169.254.169.254/latest/meta-data/", "fetch_blocked"),
    ("http://100.64.0.1/doc.pdf", "fetch_blocked"),  # CGNAT
    ("http://0.0.0.0/doc.pdf", "fetch_blocked"),
    ("http://224.0.0.1/doc.pdf", "fetch_blocked"),
    ("http://user:pw@example.com/doc.pdf", "fetch_blocked"),
    ("file:///etc/passwd", "invalid_request"),
    ("ftp://example.com/doc.pdf", "invalid_request"),
    ("gopher://127.0.0.1:6379/_INFO", "invalid_request"),
]


def test_internal_and_non_http_urls_are_refused_at_submission(service: Service) -> None:
    """Every internal address form and every non-http scheme answers 422, and no job is made."""
    key = service.new_key("acme")
    answers = []
    for url, _code in SUBMISSION_REFUSALS:
        response = submit(service, key, url)
        answers.append((url, response.status_code, response.json()["error"]["code"]))
    assert answers == [(url, 422, code) for url, code in SUBMISSION_REFUSALS]
    assert count(service, Job) == 0


def test_a_fetched_input_is_not_fetched_again_when_planning_is_retried(
    make_service: Callable[..., Service], origin: Origin
) -> None:
    """Planning that fails after the fetch (storage down once) is retried from the stored file."""
    service = make_service(**ALLOW_LOOPBACK)
    service.context.store = FlakyStore(service.context.store, failures=1)
    origin.routes["/doc.pdf"] = body(pdf_bytes(OBSERVATORY_PAGES))
    job = run(service, origin.url("/doc.pdf"))
    assert job["status"] == "succeeded", job.get("error")
    assert origin.paths() == ["/doc.pdf"]
    assert count(service, File) == 1
    with service.context.db.transaction() as session:
        assert session.get_one(Job, job["id"]).attempt == 3  # planning twice, finalizing once
