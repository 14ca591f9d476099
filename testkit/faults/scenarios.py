"""The fault scenarios: each `scenario_<name>(harness, rng, jobs)` starts what it needs, submits
`jobs` jobs, injects its fault, marks its end (`harness.fault_over()`) and drains.

The caller builds the harness with `SETTINGS[name]` and classifies afterwards (see
`run_scenario`). `rng` varies timings between iterations; a fixed seed repeats them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from testkit.faults.harness import Harness, Report, Services, service_down

Scenario = Callable[[Harness, random.Random, int], None]
POISON = "POISON"


def scenario_sigkill_worker_mid_chunk(h: Harness, rng: random.Random, jobs: int) -> None:
    """SIGKILL a worker holding a chunk; a healthy worker and the reconciler finish everything."""
    h.start(workers=0)
    doomed = h.start_worker("doomed", fault_chunk_delay_seconds=60.0)
    for _ in range(jobs):
        h.submit()
    h.wait_for_running_chunk()
    time.sleep(rng.uniform(0.0, 1.0))
    doomed.kill()
    h.fault_over()
    h.drain()  # the supervisor replaces the dead worker (without the delay)


def scenario_sigterm_mid_chunk(h: Harness, rng: random.Random, jobs: int) -> None:
    """SIGTERM a worker mid-chunk: it finishes the chunk (warm shutdown); nothing is lost."""
    h.start(workers=0)
    doomed = h.start_worker("doomed", fault_chunk_delay_seconds=2.0)
    for _ in range(jobs):
        h.submit()
    h.wait_for_running_chunk()
    time.sleep(rng.uniform(0.0, 1.0))
    doomed.stop(timeout=30)
    h.fault_over()
    h.drain()


def scenario_valkey_restart_during_burst(h: Harness, rng: random.Random, jobs: int) -> None:
    """Kill Valkey mid-burst and restart it empty: every accepted job still runs once."""
    h.start()
    third = max(jobs // 3, 1)
    for _ in range(third):
        h.submit()
    h.services.valkey.kill()
    for _ in range(third):
        h.submit()  # accepted (the row commits; the publish fails and the reconciler owns it)
    time.sleep(rng.uniform(0.5, 2.0))
    h.restart_valkey()
    h.fault_over()
    for _ in range(jobs - 2 * third):
        h.submit()
    h.drain()


def scenario_postgres_restart(h: Harness, rng: random.Random, jobs: int) -> None:
    """Stop or kill PostgreSQL while jobs run: the API answers 503 meanwhile (never 202); after a
    restart every accepted job finishes."""
    h.start()
    half = max(jobs // 2, 1)
    for _ in range(half):
        h.submit()
    time.sleep(rng.uniform(0.0, 1.0))
    with service_down(h.services.postgres, graceful=rng.random() < 0.5):
        for _ in range(2):
            accepted = len(h.accepted)
            h.submit()
            assert len(h.accepted) == accepted, "a job was accepted while the database was down"
        assert set(h.refused.values()) == {503}, h.refused
        time.sleep(rng.uniform(1.0, 3.0))
    h.fault_over()
    for _ in range(jobs - half):
        h.submit()
    h.drain()


def scenario_seaweedfs_pause(h: Harness, rng: random.Random, jobs: int) -> None:
    """Stop S3 for a few seconds while jobs run: bounded retries, then every job finishes."""
    h.start(fault_chunk_delay_seconds=1.0)  # so that the outage meets running work
    for _ in range(jobs):
        h.submit()
    h.wait_for_running_chunk()
    with service_down(h.services.seaweedfs):
        time.sleep(rng.uniform(2.0, 5.0))
    h.fault_over()
    h.drain()


def scenario_crash_after_commit_before_publish(h: Harness, rng: random.Random, jobs: int) -> None:
    """The API dies after committing a job and before publishing it, and a worker dies after
    committing a plan and before publishing its chunks: the reconciler re-sends both."""
    h.start(workers=0, fault_crash_at=None)
    api = h.start_api(fault_crash_at="api.job.after_commit")
    assert h.submit() is None and h.unanswered  # the connection dropped with the API
    api.popen.wait(timeout=10)
    h.start_api()
    h.resubmit_unanswered()  # same Idempotency-Key: the same job, now accepted
    h.start_worker("doomed", fault_crash_at="plan.after_commit")
    for _ in range(jobs - 1):
        h.submit()
    time.sleep(rng.uniform(0.0, 1.0))
    h.fault_over()
    h.drain()


def scenario_crash_after_result_before_ack(h: Harness, rng: random.Random, jobs: int) -> None:
    """A worker dies after a chunk's result commits, before the ack: Redis redelivers the
    message, whose claim finds the chunk done; each job succeeds exactly once."""
    h.start(workers=0)
    for _ in range(jobs):
        h.submit()
    doomed = h.start_worker("doomed", fault_crash_at="infer.after_result")
    doomed.popen.wait(timeout=60)
    h.fault_over()
    h.drain(settle=h.settings.visibility_timeout_seconds + 2.0)


def scenario_long_chunk_past_visibility_timeout(h: Harness, rng: random.Random, jobs: int) -> None:
    """A chunk runs longer than the visibility timeout: Redis redelivers it to the other worker,
    whose claim finds the lease held; one result per job."""
    h.start(workers=2, fault_chunk_delay_seconds=h.settings.visibility_timeout_seconds + 3.0)
    for _ in range(jobs):
        h.submit()
    h.fault_over()
    h.drain(settle=2.0)


def scenario_poison_input(h: Harness, rng: random.Random, jobs: int) -> None:
    """A job whose chunk kills any worker that runs it ends `failed` (attempts_exhausted) after
    the cap, and the other jobs finish."""
    h.start(workers=0)
    h.start_worker("w1", keep_faults=True, fault_crash_at=f"infer.before_model:{POISON}")
    h.submit(f"{POISON} Who founded the observatory?", poison=True)
    for _ in range(jobs - 1):
        h.submit()
    h.fault_over()
    h.drain(timeout=180)


SCENARIOS: dict[str, Scenario] = {
    name.removeprefix("scenario_"): fn
    for name, fn in list(globals().items())
    if name.startswith("scenario_") and callable(fn)
}
# Settings each scenario's harness needs besides the defaults.
SETTINGS: dict[str, dict[str, Any]] = {
    "crash_after_result_before_ack": {"visibility_timeout_seconds": 5},
    "long_chunk_past_visibility_timeout": {"visibility_timeout_seconds": 5, "lease_seconds": 30},
}


def run_scenario(
    name: str, services: Services, directory: Path, models_dir: Path, rng: random.Random, jobs: int
) -> Report:
    """Build a harness for `name`, run it, classify what the client was told was accepted."""
    harness = Harness(services, directory, models_dir, **SETTINGS.get(name, {}))
    try:
        SCENARIOS[name](harness, rng, jobs)
        return harness.classify(name)
    except (AssertionError, httpx.HTTPError) as error:
        raise AssertionError(f"{name}: {error}\n{harness.logs()}") from error
    finally:
        harness.close()
