"""Fetch a job's `url` input into object storage through the SSRF guard, once, at planning.

    GET pinned address --3xx--> check Location again (core/netguard.py) --> GET ... (<= N hops)
        |--2xx--> stream to a temporary file (size cap, total-time cap) --> sniff --> store
        |--5xx, 429, 408, connection error, DNS failure--> again, up to `fetch_retries` times
        \\--other status, compressed body, too many redirects--> FetchFailed

Every hop connects to the one address `check_url` resolved and accepted (no second DNS answer),
without environment proxies, and follows no redirect by itself. Errors are final for the job:
FetchBlocked (a refused address, also behind a redirect), TooLarge (Content-Length or the bytes
that arrived past `max_upload_bytes`, nothing stored), UnsupportedMedia (sniffed like an upload),
FetchFailed (transient failures retried here within the total-time cap, then given up on: a
job-level retry would only multiply the time a slow or failing server holds a worker). A failure
of our own storage stays retryable like any other stage.
"""

from __future__ import annotations

import tempfile
import time
import unicodedata
from dataclasses import replace
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from core.db.models import Job
from core.errors import FetchBlocked, FetchFailed, HostUnresolved, TooLarge, UnsupportedMedia
from core.files import put_file
from core.kinds import KINDS
from core.logging import get_logger
from core.netguard import check_url
from core.settings import Settings
from core.sniff import SNIFF_BYTES, sniff_content_type
from core.state import Claim, attach_input
from worker.context import WorkerContext
from worker.kinds import JobInfo

log = get_logger("fetch")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_BACKOFF_SECONDS = 0.5


class _Transient(Exception):
    """A failure worth one more try: the server or the network may recover."""


def fetch_url_input(ctx: WorkerContext, claim: Claim, job: JobInfo) -> JobInfo:
    """For a job with a `url` input and no file yet: fetch it, record it as a file of the tenant,
    point the job at it, and return the job as planning should see it. Other jobs pass through."""
    if job.input_key is not None:
        return job  # a file input, or a url fetched by an earlier attempt
    with ctx.db.transaction() as session:
        spec = session.get_one(Job, job.id).spec
    url = spec.get("input", {}).get("url")
    if not isinstance(url, str):
        return job
    with tempfile.TemporaryFile() as body:
        final_url = download(ctx.settings, url, body)
        body.seek(0)
        filename = _filename(final_url)
        content_type = sniff_content_type(body.read(SNIFF_BYTES), filename)
        if content_type is None or content_type not in KINDS[job.kind].content_types:
            shown = content_type or "an unsupported type"
            raise UnsupportedMedia(f"{job.kind} cannot read {shown} (fetched from {url})")
        body.seek(0)
        file = put_file(
            ctx.store, job.tenant_id, filename, content_type, body, ctx.settings.max_upload_bytes
        )
    with ctx.db.transaction() as session:
        attach_input(session, claim, file)  # a stale attempt's file stays an orphan
    log.info("job.input.fetched", file_id=file.id, bytes=file.bytes, content_type=content_type)
    return replace(job, input_key=file.storage_key, content_type=content_type, filename=filename)


def download(settings: Settings, url: str, out: IO[bytes]) -> str:
    """GET `url` into `out` within every cap, retrying transient failures; returns the final URL."""
    deadline = time.monotonic() + settings.fetch_total_seconds
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for attempt in range(settings.fetch_retries + 1):
            out.seek(0)
            out.truncate()
            try:
                return _follow(client, settings, url, out, deadline)
            except _Transient as exc:
                wait = _BACKOFF_SECONDS * 2**attempt
                last = attempt == settings.fetch_retries
                if last or time.monotonic() + wait >= deadline:
                    tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
                    raise FetchFailed(f"fetching {url} failed after {tries}: {exc}") from None
                log.info("job.input.fetch.retry", error=str(exc), wait=wait)
                time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _follow(
    client: httpx.Client, settings: Settings, url: str, out: IO[bytes], deadline: float
) -> str:
    """One try: GET `url`, following up to `fetch_max_redirects` redirects by hand."""
    current = url
    for _hop in range(settings.fetch_max_redirects + 1):
        try:
            target = check_url(current, settings.fetch_allow_networks)
        except HostUnresolved as exc:
            raise _Transient(exc.message) from None
        except FetchBlocked as exc:
            shown = "" if current == url else f" (redirected from {url})"
            raise FetchBlocked(f"{exc.message}{shown}") from None
        headers = {
            "host": target.host_header,
            "user-agent": "nightowl-fetch",
            "accept-encoding": "identity",  # a compressed body could inflate past every cap
        }
        timeout = httpx.Timeout(min(settings.fetch_timeout_seconds, _remaining(deadline, url)))
        try:
            with client.stream(
                "GET",
                target.connect_url,
                headers=headers,
                extensions=target.extensions,
                timeout=timeout,
            ) as response:
                code = response.status_code
                if code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchFailed(f"HTTP {code} from {current} without a Location")
                    current = urljoin(current, location)
                    continue
                if code in _TRANSIENT_STATUS:
                    raise _Transient(f"HTTP {code} from {current}")
                if not 200 <= code < 300:
                    raise FetchFailed(f"HTTP {code} from {current}")
                _copy_body(response, out, settings.max_upload_bytes, deadline, url)
                return current
        except httpx.TransportError as exc:  # connect/read errors and timeouts
            _remaining(deadline, url)  # past the total cap: final, not transient
            raise _Transient(f"{type(exc).__name__} from {current}") from None
    raise FetchFailed(f"{url} redirected more than {settings.fetch_max_redirects} times")


def _copy_body(
    response: httpx.Response, out: IO[bytes], max_bytes: int, deadline: float, url: str
) -> None:
    """Stream the body into `out`, refusing it as soon as it is known to pass `max_bytes`."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchFailed(f"{url} answered with a {encoding!r}-encoded body; send it unencoded")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"{url} is {int(declared)} bytes; the limit is {max_bytes}")
    size = 0
    for data in response.iter_raw():  # as it arrives: a chunk size would wait to fill it
        size += len(data)
        if size > max_bytes:
            raise TooLarge(f"{url} is larger than the limit of {max_bytes} bytes")
        _remaining(deadline, url)
        out.write(data)


def _remaining(deadline: float, url: str) -> float:
    """Seconds left before the total-time cap; FetchFailed once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(f"fetching {url} took longer than the time limit")
    return left


def _filename(url: str) -> str:
    """A display name from the URL's last path segment (sniffing uses its extension for texts)."""
    name = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[:255] or "download"
