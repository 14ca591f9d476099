"""Property-based requests generated from the OpenAPI document (schemathesis), sent in process
to the ASGI app with a real key: no 500s, and every answer matches the documented schema."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.fixtures.backends import Service

CHECKS = [not_a_server_error, response_schema_conformance]
# Examples per operation and generation mode; raise it for a deeper run (e.g. 200).
EXAMPLES = int(os.environ.get("NIGHTOWL_TEST_FUZZ_EXAMPLES", "12"))


@pytest.mark.parametrize("backend", ["sqlite-local"], indirect=True)
def test_api_answers_every_generated_request_within_its_schema(make_service: Any) -> None:
    """For every operation of the document, generated requests (valid and invalid) get answers
    that are never 5xx and always match the documented response schema."""
    service: Service = make_service(rate_limit_requests=100_000)
    headers = service.headers(service.new_key("fuzz"))
    api = schemathesis.openapi.from_asgi("/openapi.json", service.client.app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            check()
        except Exception as exc:  # one report for all operations
            failures.append(f"{operation.verbose_name}: {exc}")
    print(f"{operations} operations, answers by status: {dict(sorted(statuses.items()))}")
    assert operations >= 25
    assert {200, 404, 422} <= set(statuses), statuses
    assert not failures, "\n\n".join(failures)
