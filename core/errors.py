"""The error tree of nightowl: every error knows its HTTP status, its code, and whether to retry.

    NightowlError                       code, http_status, retryable
    ├── InvalidInput         400  invalid_input      bad document, corrupt file, bad params
    ├── Unauthorized         401  unauthorized       missing or unknown API key
    ├── NotFound             404  not_found          unknown id, or another tenant's id
    ├── Conflict             409  conflict           Idempotency-Key reused with another body
    ├── TooLarge             413  too_large          upload, page count, duration over a limit
    ├── UnsupportedMedia     415  unsupported_media  a file type no job kind reads
    ├── Unprocessable        422  unprocessable      a well-formed request that names nothing we do
    │   └── FetchBlocked     422  fetch_blocked      an outbound URL the SSRF guard refuses
    │       └── HostUnresolved  422  fetch_blocked   its host does not resolve now (retryable)
    ├── FetchFailed          502  fetch_failed       a url input that could not be fetched
    ├── RateLimited          429  rate_limited       a key over its request rate (Retry-After)
    ├── QueueFull            429  queue_full         a tenant over its cap of unfinished jobs
    ├── ServiceUnavailable   503  unavailable        database, broker or storage down (retryable)
    └── EngineError          500  engine_error       the model failed or cannot be loaded

API handlers turn them into `{"error": {"code", "message"}}`; workers store `code` and `message`
on the failed job and retry only when `retryable` is true.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NightowlError(Exception):
    """Base of every error nightowl raises on purpose; a subclass names its code and status."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    # Seconds a client should wait before trying again; sent as the Retry-After header.
    retry_after: int | None = None

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        # What a subclass leaves out it inherits, as FetchBlocked does Unprocessable's 422.
        if code is not None:
            cls.code = code
        if http_status is not None:
            cls.http_status = http_status
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        """The JSON body of this error, as the API and job rows show it."""
        return {"code": self.code, "message": self.message}


class InvalidInput(NightowlError, code="invalid_input", http_status=400):
    """Input we cannot read: a bad document, a corrupt file, bad params."""


class Unauthorized(NightowlError, code="unauthorized", http_status=401):
    """A missing or unknown API key."""


class NotFound(NightowlError, code="not_found", http_status=404):
    """An unknown id, or another tenant's id (the same answer, on purpose)."""


class Conflict(NightowlError, code="conflict", http_status=409):
    """A request at odds with the state: a reused Idempotency-Key, a job already finished."""


class TooLarge(NightowlError, code="too_large", http_status=413):
    """An upload, page count or duration over a limit."""


class UnsupportedMedia(NightowlError, code="unsupported_media", http_status=415):
    """A file type no job kind reads."""


class Unprocessable(NightowlError, code="unprocessable", http_status=422):
    """A well-formed request that names nothing we do."""


class FetchBlocked(Unprocessable, code="fetch_blocked"):
    """A URL we must not fetch or post to: not http(s), credentials, or a non-public address."""


class HostUnresolved(FetchBlocked, retryable=True):
    """The URL's host does not resolve; DNS may recover, so a worker retries it later."""


class FetchFailed(NightowlError, code="fetch_failed", http_status=502):
    """A url input the guard allowed but that did not arrive: HTTP errors, too many redirects,
    timeouts. The fetch retries transient failures itself, so this one is final."""


class RateLimited(NightowlError, code="rate_limited", http_status=429):
    """An API key sent more requests than its rate allows; it may retry after `retry_after`."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(NightowlError, code="queue_full", http_status=429):
    """The tenant already has as many unfinished jobs as it may; new ones wait until some end."""

    retry_after = 60


class ServiceUnavailable(NightowlError, code="unavailable", http_status=503, retryable=True):
    """The database, the broker or the storage is down; worth retrying soon."""

    retry_after = 5


class EngineError(NightowlError, code="engine_error", http_status=500):
    """The model failed or cannot be loaded."""
