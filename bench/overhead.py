"""What nightowl's machinery costs around the model, next to a bare Celery round trip.

    .venv/bin/python -m bench.overhead [--jobs N] [--sequential M] [--write]

Starts PostgreSQL, Valkey, SeaweedFS, the tiny model, the API and one solo worker as the
postgres-s3 end-to-end tests do, plus a solo worker of a no-op task on nightowl's own Celery
configuration (`bench/_noop.py`) on the same Valkey. Then a burst of N `document.qa` jobs over
HTTP and one of N no-ops, and M sequential rounds of one job then one no-op; `NOTES` below says
exactly what is timed. Everything it started is stopped, and its temp dir removed, on any exit.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import _noop, _report
from bench._report import at_least
from core.migrate import upgrade
from core.settings import Settings
from testkit.backends import fresh_postgres_database, new_tenant_key, s3_values
from testkit.markdown import table
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from testkit.services import S3Service, start_postgres, start_seaweedfs, start_valkey
from testkit.stack import Stack
from worker.engine import TINY, build_tiny_model

POLL_SECONDS = 0.02
JOB_TIMEOUT = 120.0
QUESTIONS = ["Who founded the observatory?", "When does the season run?", "How many clear nights?"]


@dataclass
class Singles:
    """Single jobs run one at a time: each one's end-to-end and model seconds."""

    job_seconds: list[float] = field(default_factory=list)
    model_seconds: list[float] = field(default_factory=list)

    @property
    def overheads(self) -> list[float]:
        return [e - m for e, m in zip(self.job_seconds, self.model_seconds, strict=True)]

    def time_one(self, api: Api, number: int) -> None:
        """Run question `number` (cycling through QUESTIONS) as one job alone; record its times."""
        seconds, model = api.run_one(QUESTIONS[number % len(QUESTIONS)])
        self.job_seconds.append(seconds)
        self.model_seconds.append(model)


@dataclass
class Results(Singles):
    """Raw measurements of one run."""

    burst_job_seconds: float = 0.0
    burst_model_seconds: float = 0.0
    burst_noop_seconds: float = 0.0
    noop_seconds: list[float] = field(default_factory=list)


class Api:
    """An HTTP client of the stack's API with one tenant key and one uploaded PDF."""

    def __init__(self, stack: Stack, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        self.stack = stack
        self.http = httpx.Client(base_url=stack.api_url, headers=headers, timeout=30)
        files = {"file": ("observatory.pdf", pdf_bytes(OBSERVATORY_PAGES[:2]))}
        upload = self.http.post("/v1/files", files=files)
        upload.raise_for_status()
        self.file_id = str(upload.json()["id"])

    def submit(self, question: str) -> str:
        body = {
            "kind": "document.qa",
            "input": {"file_id": self.file_id},
            "params": {"questions": [question]},
        }
        created = self.http.post("/v1/jobs", json=body)
        if created.status_code != 202:
            raise RuntimeError(f"submit failed: {created.status_code} {created.text}")
        return str(created.json()["id"])

    def finished(self, job_id: str) -> dict[str, Any] | None:
        """The job if it succeeded, None while it runs; raises if it failed or was cancelled."""
        job: dict[str, Any] = self.http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "succeeded":
            return job
        if job["status"] in ("failed", "cancelled"):
            logs = "\n".join(f"--- {p.name}\n{p.tail(30)}" for p in self.stack.processes)
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}\n{logs}")
        return None

    def run_one(self, question: str) -> tuple[float, float]:
        """(seconds from POST to `succeeded` seen, model seconds) of one job run alone."""
        start = time.perf_counter()
        job_id = self.submit(question)
        deadline = start + JOB_TIMEOUT
        while (job := self.finished(job_id)) is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"job {job_id} not done after {JOB_TIMEOUT}s")
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - start, model_seconds(job)

    def run_burst(self, count: int) -> tuple[float, float]:
        """(seconds from the first POST to the last `succeeded` seen, summed model seconds)."""
        start = time.perf_counter()
        pending = [self.submit(QUESTIONS[i % len(QUESTIONS)]) for i in range(count)]
        model, deadline = 0.0, start + JOB_TIMEOUT * max(1, count // 10)
        while pending:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(pending)} of {count} jobs not done in time")
            for job_id in list(pending):  # oldest first; stop at the first still running
                job = self.finished(job_id)
                if job is None:
                    break
                pending.remove(job_id)
                model += model_seconds(job)
            if pending:
                time.sleep(POLL_SECONDS)
        return time.perf_counter() - start, model


def model_seconds(job: dict[str, Any]) -> float:
    usage = job.get("usage") or {}
    return float(usage.get("prefill_seconds", 0.0)) + float(usage.get("decode_seconds", 0.0))


def start_stack(tmp: Path, cleanup: contextlib.ExitStack, **overrides: Any) -> Api:
    """PostgreSQL, Valkey, SeaweedFS, the tiny model, the API and one solo worker (both queues)
    under `tmp`, all stopped by `cleanup`; returns a client of the API with a tenant key."""
    pg = cleanup.enter_context(start_postgres(tmp / "postgres"))
    valkey = cleanup.enter_context(start_valkey(tmp / "valkey"))
    s3 = S3Service.from_running(cleanup.enter_context(start_seaweedfs(tmp / "seaweedfs")))
    build_tiny_model(tmp / "models" / TINY)
    settings = Settings(
        home=tmp / "home",
        models_dir=tmp / "models",
        model=TINY,
        draft_model=TINY,
        redis_url=valkey.url,
        database_url=fresh_postgres_database(pg.url),
        rate_limit_requests=0,  # the benchmarks poll fast; a rate limit would time the limiter
        **(s3_values(s3) | overrides),  # type: ignore[arg-type]
    )
    upgrade(settings.sqlalchemy_url)
    key = new_tenant_key(settings, "bench")
    stack = Stack(settings, tmp)
    cleanup.callback(stack.stop)
    stack.start_api()
    stack.start_worker("w1")
    api = Api(stack, key)
    cleanup.callback(api.http.close)
    return api


def run(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> Results:
    """Start everything under `tmp` (stopped by `cleanup`), measure, return the numbers."""
    api = start_stack(tmp, cleanup, max_tokens=args.max_tokens)
    noop_app = _noop.make_noop_app(api.stack.settings)
    cleanup.callback(noop_app.close)
    _noop.start_worker(api.stack, noop_app)
    expires = api.stack.settings.message_expiry_seconds
    print(f"set up in {time.perf_counter() - args.started:.1f} s; warming up", flush=True)
    api.run_one(QUESTIONS[0])
    _noop.round_trip(noop_app, expires)

    results = Results()
    print(f"burst of {args.jobs} jobs, then {args.jobs} no-ops", flush=True)
    results.burst_job_seconds, results.burst_model_seconds = api.run_burst(args.jobs)
    results.burst_noop_seconds = _noop.burst(noop_app, args.jobs, expires)
    print(f"{args.sequential} sequential rounds of one job then one no-op", flush=True)
    for i in range(args.sequential):
        results.time_one(api, i)
        results.noop_seconds.append(_noop.round_trip(noop_app, expires))
    return results


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def render(r: Results, args: argparse.Namespace) -> str:
    """The table: nightowl next to the no-op, and the ratio (how many no-ops one job costs)."""
    jobs_rate, noop_rate = args.jobs / r.burst_job_seconds, args.jobs / r.burst_noop_seconds
    burst_non_model = (r.burst_job_seconds - r.burst_model_seconds) / args.jobs
    over, trips = statistics.median(r.overheads), statistics.median(r.noop_seconds)
    over90, trips90 = p90(r.overheads), p90(r.noop_seconds)
    n, m = args.jobs, args.sequential
    rate = f"{noop_rate / jobs_rate:.0f}× (tasks/s ÷ jobs/s)"
    per = f"{burst_non_model * noop_rate:.0f}×"
    rows = [
        [f"burst throughput, N={n}", f"{jobs_rate:.2f} jobs/s", f"{noop_rate:.1f} tasks/s", rate],
        [f"burst wall − model time, per item, N={n}", ms(burst_non_model), ms(1 / noop_rate), per],
        [f"sequential overhead, median of M={m}", ms(over), ms(trips), f"{over / trips:.0f}×"],
        [f"sequential overhead, p90 of M={m}", ms(over90), ms(trips90), f"{over90 / trips90:.0f}×"],
        ["sequential end to end, median", ms(statistics.median(r.job_seconds)), ms(trips), ""],
        ["model time per job, median", ms(statistics.median(r.model_seconds)), "—", ""],
    ]
    head = ["measure", "nightowl document.qa job", "bare Celery no-op", "ratio"]
    return table(head, rows)


NOTES = """\
- Burst: N jobs (one question each, on one 2-page PDF uploaded once) submitted back to back over
  HTTP, timed from the first submit to the last `succeeded` seen; then N no-ops published at
  once, timed to the last result. Sequential: M rounds of one job (POST, then GET every 20 ms
  until `succeeded`) followed by one no-op round trip (publish, wait for the result).
- A job is three Celery tasks (plan, infer, finalize) plus the API's requests and SQL rows; plan
  downloads the PDF from S3, extracts its text and stores it back to S3, infer reads it, finalize
  writes two artifacts. One solo worker takes all three tasks. The no-op is one task on the same
  Celery settings (JSON, late acks, prefetch 1), on its own queue and solo worker, same Valkey.
- The no-op's completion is seen through a Celery result backend on the same Valkey (db 1): the
  sender subscribes before publishing and wakes on the result's pub/sub message. nightowl's app
  ignores results, so the job's completion is seen by polling `GET /v1/jobs/{id}` every 20 ms,
  which adds ~10 ms on average to each sequential job (and puts that load on the API and SQL).
- Overhead = end-to-end time minus the job's model time (`usage.prefill_seconds +
  usage.decode_seconds`). Burst per item = (wall time − summed model time) / N. One warm-up job
  and no-op run first and are not counted.
- Reading it: a solo worker runs the model one job at a time, so the throughput ratio is mostly
  model time; the overhead rows are what the stack adds around the model. In a burst the API's
  and SQL's work overlaps the worker's model time (other processes), so the burst per-item figure
  is usually below the sequential overhead (its polling lag is also paid once, not per job)."""


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=at_least(1), default=30, help="burst size N (default 30)")
    parser.add_argument(
        "--sequential", type=at_least(2), default=10, help="sequential M (default 10)"
    )
    parser.add_argument("--max-tokens", type=int, default=8, help="per answer (default 8)")


def measure(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> _report.Outcome:
    """Run under `tmp`; the table, the notes and the run's parameters."""
    results = run(args, tmp, cleanup)
    facts = f"N={args.jobs}, M={args.sequential}, max_tokens={args.max_tokens}"
    return _report.Outcome(render(results, args), NOTES, facts)


if __name__ == "__main__":
    _report.main("overhead", __doc__, options, measure)
