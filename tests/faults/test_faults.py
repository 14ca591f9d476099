"""Each fault scenario once, with two jobs, over the real processes and services.

The scenarios and their pass rule are in `testkit/faults/` (`scenarios.py`, `harness.py`);
`bench/faults.py` runs them many times. Every accepted job must end ok (the poison job `failed`
after the attempts cap), none lost, duplicated or stuck, and no refused request may leave a row
behind.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.faults.harness import Report, Services, render, start_services
from testkit.faults.scenarios import SCENARIOS, run_scenario

SEED = 6
JOBS = 2


@pytest.fixture(scope="module")
def fault_services(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Services]:
    """Restartable PostgreSQL, Valkey and SeaweedFS of this module; prints the table at the end."""
    reports: list[Report] = []
    request.config.stash[_REPORTS] = reports
    with start_services(tmp_path_factory.mktemp("fault-services")) as services:
        yield services
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and reports:
        with capture.global_and_fixture_disabled():
            print("\n" + render(reports))


_REPORTS = pytest.StashKey[list[Report]]()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario(
    name: str,
    fault_services: Services,
    tmp_path: Path,
    tiny_model: object,
    tiny_models_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Under this fault no accepted job is lost, duplicated or stuck, and each result is right."""
    report = run_scenario(
        name, fault_services, tmp_path, tiny_models_dir, random.Random(SEED), JOBS
    )
    request.config.stash[_REPORTS].append(report)
    assert report.passed, report
    poison = 1 if name == "poison_input" else 0
    assert report.accepted == JOBS and report.expected_failures == poison, report
    assert report.ok == JOBS - poison, report
