"""Per-key rate limits: the request past the limit is a 429 with Retry-After, other keys and
the health routes are unaffected, the window frees again, and Redis shares it between processes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.backends import Service

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite-local"], indirect=True)


def _get(service: Service, key: str) -> Any:
    return service.client.get("/v1/jobs", headers=service.headers(key))


@SQLITE_ONLY
def test_the_request_past_the_limit_is_429_with_retry_after(make_service: Any) -> None:
    """With 3 requests per 2 s, a key's 4th is 429 rate_limited with an integer Retry-After;
    another key and /healthz still pass; once the window has moved on the key passes again."""
    service: Service = make_service(rate_limit_requests=3, rate_limit_window_seconds=2)
    busy, quiet = service.new_key("acme"), service.new_key("acme")
    started = time.monotonic()
    assert [_get(service, busy).status_code for _ in range(3)] == [200, 200, 200]
    refused = _get(service, busy)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "rate limit of 3 requests per 2 s exceeded for this API key; "
            f"retry after {retry_after} s",
        }
    }
    assert _get(service, quiet).status_code == 200
    assert all(service.client.get("/healthz").status_code == 200 for _ in range(10))
    time.sleep(max(0.0, 2.1 - (time.monotonic() - started)))
    assert _get(service, busy).status_code == 200


@SQLITE_ONLY
def test_api_processes_share_one_budget_through_redis(make_service: Any, redis_url: str) -> None:
    """Two API apps on the same Redis count one key together: 2 + 2 requests against a limit of
    3 makes the fourth a 429, wherever it lands."""
    overrides = {"rate_limit_requests": 3, "rate_limit_window_seconds": 60, "redis_url": redis_url}
    first: Service = make_service(**overrides)
    second: Service = make_service(**overrides | {"database_url": first.settings.sqlalchemy_url})
    key = first.new_key("acme")
    assert _get(first, key).status_code == 200
    assert _get(second, key).status_code == 200
    assert _get(first, key).status_code == 200
    refused = _get(second, key)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


@SQLITE_ONLY
def test_zero_turns_the_limit_off(make_service: Any) -> None:
    """rate_limit_requests=0 lets any number of requests through."""
    service: Service = make_service(rate_limit_requests=0)
    key = service.new_key("acme")
    assert all(_get(service, key).status_code == 200 for _ in range(30))
