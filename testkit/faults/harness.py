"""A fault harness: real services and nightowl processes, N small jobs, one fault, then a count.

`start_services` starts PostgreSQL, Valkey and SeaweedFS in a private folder (restartable, unlike
the session fixtures). A `Harness` owns one fresh database and a `Stack` (API, workers, beat with
short leases and a fast reconciler), submits small `document.qa` jobs over HTTP, and after the
fault `drain()`s (restarting dead workers, as a supervisor would) and `classify()`s every job the
client was told was accepted (202, or 200 for a retried Idempotency-Key):

- ok: `succeeded` once (one `job.succeeded` event in the logs) with its result readable;
- lost: no row, or never picked up (still `queued`) by the deadline;
- duplicated: more than one `job.succeeded` event for it;
- stuck: started but not finished by the deadline;
- failed: ended `failed` although it was not the scenario's poison job.

Re-executions are claims beyond the first: chunk `attempt - 1`, plus job stage claims beyond
plan and finalize. Recovery is from the end of the fault to the last job's `finished_at`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import kombu.pools
import redis
from sqlalchemy import select

from core.auth import create_key
from core.db import Database
from core.db.models import Chunk, Job
from core.migrate import upgrade
from core.queue import make_celery
from core.settings import Settings
from testkit.backends import fresh_postgres_database, s3_values
from testkit.markdown import table
from testkit.services import (
    RunningService,
    S3Service,
    start_postgres,
    start_seaweedfs,
    start_valkey,
)
from testkit.stack import Process, Stack
from worker.engine import TINY

TERMINAL = {"succeeded", "failed", "cancelled", "expired"}
DOCUMENT = (
    b"The Brightwater Observatory was founded in 1911 by Ada Merrow, a surveyor.\n"
    b"Its viewing season runs from October to March, when the nights are long.\n"
    b"In 2019 its staff discovered a small comet, now named Merrow-Brightwater.\n"
)
QUESTION = "Who founded the observatory?"
_SKIPPED = re.compile(r"job\.(?:chunk|claim)\.skipped\b")
_SUCCEEDED = re.compile(r"job\.succeeded\b.*?\bjob_id='?(job_[A-Za-z0-9_-]+)")


@dataclass
class Services:
    """The three restartable servers of one harness run."""

    postgres: RunningService
    valkey: RunningService
    seaweedfs: RunningService

    @property
    def s3(self) -> S3Service:
        return S3Service.from_running(self.seaweedfs)


@contextlib.contextmanager
def start_services(directory: Path) -> Iterator[Services]:
    """PostgreSQL, Valkey and SeaweedFS under `directory`, stopped at the end."""
    with (
        start_postgres(directory / "postgres") as pg,
        start_valkey(directory / "valkey") as kv,
        start_seaweedfs(directory / "seaweedfs") as s3,
    ):
        yield Services(pg, kv, s3)


@contextlib.contextmanager
def service_down(service: RunningService, graceful: bool = True) -> Iterator[None]:
    """`service` is down inside the block: shut down with its stop signal (or SIGKILLed, like a
    crash, if not `graceful`), then started again on the same ports and data."""
    if graceful:
        os.kill(service.pid, signal.SIGINT if service.name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + 30
        while service.running and time.monotonic() < deadline:
            time.sleep(0.1)
    else:
        service.kill()
    try:
        yield
    finally:
        service.restart()


@dataclass
class Report:
    """The outcome of one scenario run."""

    scenario: str
    accepted: int = 0
    refused: int = 0  # answers other than 202/200 (e.g. 503 while the database is down)
    ok: int = 0
    expected_failures: int = 0  # poison jobs that ended `failed` with `attempts_exhausted`
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    failed: int = 0
    orphans: int = 0  # refused requests that left a job row behind
    reexecutions: int = 0
    skipped: int = 0  # deliveries (redelivered or re-sent) that found their claim taken
    recovery_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No job lost, duplicated, stuck or failed unexpectedly, and no refused request ran."""
        bad = self.lost + self.duplicated + self.stuck + self.failed + self.orphans
        return bad == 0 and not self.problems


@dataclass
class _Worker:
    process: Process
    overrides: dict[str, Any]
    keep_faults: bool  # a replacement keeps the faults (a poison input kills any worker)


class Harness:
    """One fresh database, the nightowl processes, and the jobs a client submitted to them."""

    def __init__(
        self, services: Services, directory: Path, models_dir: Path, **overrides: Any
    ) -> None:
        values: dict[str, Any] = {
            "home": directory / "home",
            "models_dir": models_dir,
            "model": TINY,
            "draft_model": TINY,
            "max_tokens": 8,
            "redis_url": services.valkey.url,
            "database_url": fresh_postgres_database(services.postgres.url),
            "lease_seconds": 4,
            "reconcile_interval_seconds": 1.0,
            "reconcile_grace_seconds": 1.0,
            "visibility_timeout_seconds": 30,
            "rate_limit_requests": 0,  # the harness polls; limits are not under test here
            **s3_values(services.s3),
        }
        directory.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(**(values | overrides))
        self.services = services
        upgrade(self.settings.sqlalchemy_url)
        redis.Redis.from_url(services.valkey.url).flushdb()
        self.db = Database(self.settings.sqlalchemy_url)
        with self.db.transaction() as session:
            key = create_key(session, "faults")
        self.headers = {"Authorization": f"Bearer {key}"}
        self.stack = Stack(self.settings, directory)
        self.workers: dict[str, _Worker] = {}
        self.accepted: list[str] = []
        self.poison: set[str] = set()
        self.refused: dict[str, int] = {}  # Idempotency-Key -> HTTP status
        self.unanswered: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> body
        self.fault_ended = datetime.now(UTC)
        self.file_id = ""

    # -- processes -----------------------------------------------------------------------------

    def start(self, workers: int = 1, beat: bool = True, **worker_overrides: Any) -> None:
        """API, `workers` workers (with `worker_overrides`), beat, and the document uploaded."""
        self.start_api()
        for number in range(1, workers + 1):
            self.start_worker(f"w{number}", **worker_overrides)
        if beat:
            self.stack.start_beat()
        upload = httpx.post(
            f"{self.stack.api_url}/v1/files",
            files={"file": ("observatory.txt", DOCUMENT, "text/plain")},
            headers=self.headers,
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        self.file_id = str(upload.json()["id"])

    def start_api(self, **overrides: Any) -> Process:
        """(Re)start the API, with setting `overrides` (e.g. a fault point)."""
        base = self.stack.settings
        self.stack.settings = base.model_copy(update=overrides)
        try:
            return self.stack.start_api()
        finally:
            self.stack.settings = base

    def start_worker(self, name: str, keep_faults: bool = False, **overrides: Any) -> Process:
        """A solo worker on both queues; replaced by `replace_dead_workers` if it dies."""
        try:
            process = self.stack.start_worker(name, **overrides)
        except redis.ConnectionError:
            # A pooled broker connection of this process died with a Valkey restart: ask again.
            process = self.stack.processes[-1]
            self._await_ping(name, process)
        except RuntimeError:
            process = self.stack.processes[-1]
            if not overrides.get("fault_crash_at") or process.popen.poll() is None:
                raise  # only a worker with a crash point may die before it answers
        self.workers[name] = _Worker(process, overrides, keep_faults)
        return process

    def _await_ping(self, name: str, process: Process, timeout: float = 60) -> None:
        app = make_celery(self.settings)
        destination = [f"{name}@{socket.gethostname()}"]
        deadline = time.monotonic() + timeout
        try:
            while not app.control.ping(destination=destination, timeout=0.5):
                assert process.popen.poll() is None, process.tail()
                assert time.monotonic() < deadline, f"{name} not ready:\n{process.tail()}"
        finally:
            app.close()

    def replace_dead_workers(self) -> int:
        """Start a new worker for each dead one (without its faults unless `keep_faults`)."""
        replaced = 0
        for name, worker in list(self.workers.items()):
            if worker.process.popen.poll() is None:
                continue
            overrides = worker.overrides if worker.keep_faults else {}
            self.start_worker(name, worker.keep_faults, **overrides)
            replaced += 1
        return replaced

    def restart_valkey(self) -> None:
        """Start Valkey again, empty. This process's pooled broker connections (kombu's global
        producer pool) remember declarations the restart wiped, so they are dropped; the
        nightowl processes declare their queues again when they reconnect."""
        self.services.valkey.restart()
        kombu.pools.reset()

    def close(self) -> None:
        """Stop the processes and close the database connections."""
        self.stack.stop()
        self.db.dispose()

    # -- the client ----------------------------------------------------------------------------

    def submit(self, question: str = QUESTION, *, poison: bool = False) -> str | None:
        """POST one job with an Idempotency-Key; returns its id if accepted."""
        body = {
            "kind": "document.qa",
            "input": {"file_id": self.file_id},
            "params": {"questions": [question], "max_tokens": 8},
        }
        job_id = self._post(uuid.uuid4().hex, body)
        if job_id is not None and poison:
            self.poison.add(job_id)
        return job_id

    def resubmit_unanswered(self) -> None:
        """Send again, with the same key, every request whose connection dropped."""
        for key, body in list(self.unanswered.items()):
            del self.unanswered[key]
            self._post(key, body)

    def _post(self, key: str, body: dict[str, Any]) -> str | None:
        try:
            response = httpx.post(
                f"{self.stack.api_url}/v1/jobs",
                json=body,
                headers={**self.headers, "Idempotency-Key": key},
                timeout=30,
            )
        except httpx.TransportError:
            self.unanswered[key] = body  # a client retries these with the same key
            return None
        if response.status_code in (200, 202):
            job_id = str(response.json()["id"])
            if job_id not in self.accepted:
                self.accepted.append(job_id)
            self.refused.pop(key, None)
            return job_id
        self.refused[key] = response.status_code
        return None

    def fault_over(self) -> None:
        """Mark the end of the fault: recovery is measured from here."""
        self.fault_ended = datetime.now(UTC)

    def wait_for_running_chunk(self, timeout: float = 60) -> None:
        """Block until some chunk of an accepted job is `running` (claimed by a worker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.transaction() as session:
                if session.scalar(select(Chunk.id).where(Chunk.status == "running").limit(1)):
                    return
            time.sleep(0.1)
        raise AssertionError(f"no chunk started in {timeout}s:\n{self.logs()}")

    # -- draining and counting -----------------------------------------------------------------

    def drain(self, timeout: float = 120, settle: float = 0.0) -> None:
        """Wait until every accepted job is terminal (or `timeout`), replacing dead workers;
        then wait `settle` seconds more for late redeliveries to show any duplicate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.replace_dead_workers()
            if all(status in TERMINAL for status in self._statuses().values()):
                break
            time.sleep(0.3)
        time.sleep(settle)

    def _statuses(self) -> dict[str, str]:
        with self.db.transaction() as session:
            rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(self.accepted)))
            return {row.id: row.status for row in rows}

    def _log_text(self) -> str:
        logs = {p.log for p in self.stack.processes}
        return "\n".join(log.read_text(errors="replace") for log in logs if log.exists())

    def succeeded_events(self) -> Counter[str]:
        """`job.succeeded` log events per job id, over every process log."""
        return Counter(_SUCCEEDED.findall(self._log_text()))

    def classify(self, scenario: str) -> Report:
        """Count every accepted job as ok, lost, duplicated, stuck or failed."""
        report = Report(scenario, accepted=len(self.accepted), refused=len(self.refused))
        report.skipped = len(_SKIPPED.findall(self._log_text()))
        events = self.succeeded_events()
        with self.db.transaction() as session:
            jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(self.accepted)))}
            chunks = session.execute(
                select(Chunk.job_id, Chunk.attempt).where(Chunk.job_id.in_(self.accepted))
            ).all()
            report.orphans = len(
                session.scalars(
                    select(Job.id).where(Job.idempotency_key.in_(list(self.refused)))
                ).all()
            )
        report.reexecutions = sum(max(c.attempt - 1, 0) for c in chunks) + sum(
            max(j.attempt - 2, 0) for j in jobs.values() if j.status == "succeeded"
        )
        finished = [j.finished_at for j in jobs.values() if j.finished_at is not None]
        if finished:
            last = max(f.replace(tzinfo=f.tzinfo or UTC) for f in finished)
            report.recovery_seconds = max((last - self.fault_ended).total_seconds(), 0.0)
        for job_id in self.accepted:
            self._count(report, job_id, jobs.get(job_id), events[job_id])
        return report

    def _count(self, report: Report, job_id: str, job: Job | None, succeeded: int) -> None:
        if job is None or job.status in ("queued", "scheduled"):
            report.lost += 1
        elif succeeded > 1:
            report.duplicated += 1
        elif job.status not in TERMINAL:
            report.stuck += 1
        elif job.id in self.poison:
            if job.status == "failed" and job.error_code == "attempts_exhausted":
                report.expected_failures += 1
            else:
                report.problems.append(f"poison {job_id}: {job.status} {job.error_code}")
        elif job.status != "succeeded":
            report.failed += 1
            report.problems.append(f"{job_id}: {job.status} {job.error_code} {job.error_message}")
        elif succeeded == 1 and self._result_readable(job_id):
            report.ok += 1
        else:
            report.problems.append(f"{job_id}: succeeded {succeeded} times, result unreadable")

    def _result_readable(self, job_id: str) -> bool:
        url = f"{self.stack.api_url}/v1/jobs/{job_id}/result"
        deadline = time.monotonic() + 30
        response = httpx.get(url, headers=self.headers, timeout=30)
        while response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(1)  # a service just restarted (503 + Retry-After): ask again, as a client
            response = httpx.get(url, headers=self.headers, timeout=30)
        return response.status_code == 200 and len(response.json().get("answers", [])) == 1

    def logs(self, lines: int = 30) -> str:
        """The tails of every process log, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.tail(lines)}" for p in self.stack.processes)


def render(reports: list[Report]) -> str:
    """The table: one row per scenario, summed over its runs (recovery: median and max)."""
    rows: list[list[str]] = []
    for scenario in dict.fromkeys(r.scenario for r in reports):
        runs = [r for r in reports if r.scenario == scenario]
        total = {
            name: sum(getattr(r, name) for r in runs)
            for name in (
                "accepted", "refused", "ok", "expected_failures", "lost", "duplicated",
                "stuck", "failed", "orphans", "reexecutions", "skipped",
            )
        }  # fmt: skip
        recovery = [r.recovery_seconds for r in runs]
        recovered = f"{statistics.median(recovery):.1f} / {max(recovery):.1f}"
        rows.append([scenario, str(len(runs)), *(str(v) for v in total.values()), recovered])
    head = ["scenario", "runs", "accepted", "refused", "ok", "poison failed", "lost"]
    head += ["duplicates", "stuck", "failed", "orphans", "re-executions", "claim taken"]
    head += ["recovery s (med / max)"]
    return table(head, rows)
