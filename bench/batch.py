"""What a batch costs per line around the model, next to the per-job overhead of single jobs.

    .venv/bin/python -m bench.batch [--lines N] [--singles M] [--bulk-in-flight K] [--write]

Starts PostgreSQL, Valkey, SeaweedFS, the tiny model, the API and one solo worker as
`bench/overhead.py` does (postgres-s3 backend). Then M single `document.qa` jobs one at a time,
half before and half after one batch of N `document.qa` lines over the same PDF, submitted
through `POST /v1/batches` and waited for until `completed`. `NOTES` below says exactly what is
timed. Everything it started is stopped, and its temp dir removed, on any exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import _report
from bench._report import at_least
from bench.overhead import QUESTIONS, Api, Singles, model_seconds, ms, p90, start_stack
from testkit.markdown import table

BATCH_POLL_SECONDS = 0.2
LINE_TIMEOUT = 10.0  # seconds per line before the batch counts as stuck


@dataclass
class Results(Singles):
    """Raw measurements of one run."""

    validate_seconds: float = 0.0
    batch_seconds: float = 0.0
    batch_model_seconds: float = 0.0
    batch_covered_seconds: float = 0.0
    span_seconds: list[float] = field(default_factory=list)

    @property
    def in_span(self) -> list[float]:
        return [s - m for s, m in zip(self.span_seconds, self.model_seconds, strict=True)]

    @property
    def outside_span(self) -> list[float]:
        return [e - s for e, s in zip(self.job_seconds, self.span_seconds, strict=True)]


def batch_lines(file_id: str, count: int, max_tokens: int) -> bytes:
    """A JSONL of `count` one-question `document.qa` requests over `file_id`."""
    lines = []
    for i in range(count):
        params = {"questions": [QUESTIONS[i % len(QUESTIONS)]], "max_tokens": max_tokens}
        body = {"kind": "document.qa", "input": {"file_id": file_id}, "params": params}
        line = {"custom_id": f"line-{i}", "method": "POST", "url": "/v1/jobs", "body": body}
        lines.append(json.dumps(line))
    return ("\n".join(lines) + "\n").encode()


def run_batch(api: Api, data: bytes, count: int) -> tuple[float, float, str]:
    """(seconds of the POST, seconds from the POST to `completed` seen, batch id)."""
    upload = api.http.post("/v1/files", files={"file": ("bench.jsonl", data)})
    upload.raise_for_status()
    file_id = upload.json()["id"]
    body = {"input_file_id": file_id, "endpoint": "/v1/jobs", "completion_window": "24h"}
    start = time.perf_counter()
    created = api.http.post("/v1/batches", json=body, timeout=600)
    validated = time.perf_counter() - start
    batch = created.json()
    if created.status_code != 200 or batch["status"] != "in_progress":
        raise RuntimeError(f"batch not accepted: {created.status_code} {created.text[:2000]}")
    deadline = start + LINE_TIMEOUT * count
    while batch["status"] != "completed":
        if batch["status"] != "in_progress":
            raise RuntimeError(f"batch {batch['id']} ended {batch['status']}: {batch}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"batch {batch['id']} not done in time: {batch['request_counts']}")
        time.sleep(BATCH_POLL_SECONDS)
        batch = api.http.get(f"/v1/batches/{batch['id']}").json()
    return validated, time.perf_counter() - start, str(batch["id"])


def list_jobs(api: Api, **filters: str) -> list[dict[str, Any]]:
    """Every job matching `filters`, read page by page from `GET /v1/jobs`."""
    jobs: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": 100}
    while True:
        page = api.http.get("/v1/jobs", params=params)
        page.raise_for_status()
        listed = page.json()
        jobs += listed["data"]
        if not listed["has_more"]:
            return jobs
        params["after"] = listed["last_id"]


def span(job: dict[str, Any]) -> tuple[datetime, datetime]:
    """From the job's plan starting to its finalize committing (`started_at`, `finished_at`)."""
    return datetime.fromisoformat(job["started_at"]), datetime.fromisoformat(job["finished_at"])


def covered_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds inside at least one of `spans` (batch jobs overlap: B's plan can precede A's end)."""
    total, reach = 0.0, None
    for begin, end in sorted(spans):
        if reach is not None and begin < reach:
            begin = reach
        if end > begin:
            total += (end - begin).total_seconds()
        reach = end if reach is None else max(reach, end)
    return total


def run_singles(api: Api, count: int, results: Results) -> None:
    """`count` single jobs, each submitted once the previous one is seen `succeeded`."""
    for i in range(count):
        results.time_one(api, i)


def run(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> Results:
    """Start everything under `tmp` (stopped by `cleanup`), measure, return the numbers."""
    overrides = {"max_tokens": args.max_tokens, "bulk_in_flight": args.bulk_in_flight}
    api = start_stack(tmp, cleanup, **overrides)
    print(f"set up in {time.perf_counter() - args.started:.1f} s; warming up", flush=True)
    api.run_one(QUESTIONS[0])
    results = Results()
    first = args.singles // 2
    print(f"{first} single jobs one at a time", flush=True)
    run_singles(api, first, results)
    print(f"batch of {args.lines} lines, NIGHTOWL_BULK_IN_FLIGHT={args.bulk_in_flight}", flush=True)
    data = batch_lines(api.file_id, args.lines, args.max_tokens)
    results.validate_seconds, results.batch_seconds, batch_id = run_batch(api, data, args.lines)
    jobs = list_jobs(api, batch_id=batch_id)
    if len(jobs) != args.lines or any(j["status"] != "succeeded" for j in jobs):
        raise RuntimeError(f"batch {batch_id}: {len(jobs)} jobs, not all succeeded")
    results.batch_model_seconds = sum(model_seconds(j) for j in jobs)
    results.batch_covered_seconds = covered_seconds([span(j) for j in jobs])
    print(f"batch done in {results.batch_seconds:.1f} s; {args.singles - first} more singles")
    run_singles(api, args.singles - first, results)
    singles = sorted((j for j in list_jobs(api) if j["batch_id"] is None), key=span)[1:]
    results.span_seconds = [(end - begin).total_seconds() for begin, end in map(span, singles)]
    return results


def _row(name: str, batch: float, single: float, note: str = "(median)") -> list[str]:
    return [name, ms(batch), f"{ms(single)} {note}", f"{batch / single:.2f}"]


def render(r: Results, args: argparse.Namespace) -> str:
    """The table: a batch line next to a single job, and the ratio of their overheads."""
    n, m, med = args.lines, args.singles, statistics.median
    overhead = (r.batch_seconds - r.batch_model_seconds) / n
    rows = [
        [f"validation (POST /v1/batches), N={n}", f"{r.validate_seconds:.2f} s", "—", ""],
        ["validation per line", ms(r.validate_seconds / n), "—", ""],
        ["submit to complete", f"{r.batch_seconds:.1f} s", "—", ""],
        _row("end to end per item", r.batch_seconds / n, med(r.job_seconds)),
        _row("model time per item", r.batch_model_seconds / n, med(r.model_seconds)),
        _row("scheduling overhead per item", overhead, med(r.overheads), f"(median of M={m})"),
        _row(
            "… inside a job's span, not model",
            (r.batch_covered_seconds - r.batch_model_seconds) / n,
            med(r.in_span),
        ),
        _row(
            "… outside every job's span",
            (r.batch_seconds - r.batch_covered_seconds) / n,
            med(r.outside_span),
        ),
        _row(
            "overhead per item without validation",
            overhead - r.validate_seconds / n,
            med(r.overheads),
        ),
        ["per-job overhead, p90", "—", ms(p90(r.overheads)), ""],
    ]
    head = ["measure", f"batch of N={n} lines", f"single jobs, M={m}", "ratio (batch ÷ single)"]
    return table(head, rows)


def reading(r: Results, args: argparse.Namespace) -> str:
    """One sentence with this run's own numbers: the ratio and where the difference lies."""
    n, med = args.lines, statistics.median
    overhead = (r.batch_seconds - r.batch_model_seconds) / n
    inside = (r.batch_covered_seconds - r.batch_model_seconds) / n
    outside = (r.batch_seconds - r.batch_covered_seconds) / n
    text = (
        f"- This run: a batch line's scheduling overhead is {overhead / med(r.overheads):.2f}× a "
        f"single job's: outside the jobs' spans {ms(outside)} per line against "
        f"{ms(med(r.outside_span))}, inside them (not model) {ms(inside)} against "
        f"{ms(med(r.in_span))}."
    )
    return textwrap.fill(text, width=100, subsequent_indent="  ")


NOTES = """\
- Batch: a JSONL of N lines, each one `document.qa` question (`params.max_tokens` as below) on one
  2-page PDF uploaded once, is uploaded as a file (not timed). Validation = the wall time of
  `POST /v1/batches` (it parses and checks every line, creates the N jobs in one transaction and
  runs the first `admit`). Submit to complete = from that POST until `GET /v1/batches/{id}`,
  polled every 200 ms, shows `completed` (so it includes writing the output JSONL). The jobs wait
  in SQL; `core.fairness.admit` hands them to the broker, at most `bulk_in_flight` in flight,
  each time a batch job ends (the `batch` task, which also checks whether the batch is done).
- Scheduling overhead per batch line = (submit to complete − summed model time of the N jobs) / N,
  model time being each job's `usage.prefill_seconds + usage.decode_seconds` read back from
  `GET /v1/jobs?batch_id=` (paginated). It includes validation; the last ratio row leaves it out.
- Single jobs: M jobs as in `bench.overhead`'s sequential rounds (POST /v1/jobs, then GET every
  20 ms until `succeeded`, then the next), half before and half after the batch; per-job
  overhead = end-to-end time − that job's model time. One warm-up job runs first, not counted.
- Split by a job's span, `started_at` (its plan task starts) to `finished_at` (its finalize
  commits). Inside: span time not in the model (plan, finalize, the chunk's SQL and S3 work, task
  hand-offs; for the batch the union of the N spans, which overlap, so it also holds the `batch`
  tasks and `admit`s run between one job's tasks and the next's). Outside: the rest of the end to
  end time (single job: the POST, the hop to the worker, the poll's lag; batch: validation, the
  final `batch` task and the worker's gaps). Single-job rows are medians, so they do not add up.
- One solo worker runs every task of both queues, so its non-model work never overlaps the model.
  A single job pays its outside part in series while the worker idles (the client's POST and
  polling, the hops to the worker); a batch keeps `bulk_in_flight` jobs queued, which removes that
  part, but each of its lines also costs the worker a `batch` task (`refresh_batch`, `admit`)
  inside the spans."""


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lines", type=at_least(1), default=2000, help="batch lines N (default 2000)"
    )
    parser.add_argument(
        "--singles", type=at_least(4), default=50, help="single jobs M (default 50)"
    )
    parser.add_argument("--max-tokens", type=int, default=1, help="per answer (default 1)")
    parser.add_argument(
        "--bulk-in-flight", type=at_least(1), default=4, help="NIGHTOWL_BULK_IN_FLIGHT (default 4)"
    )


def measure(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> _report.Outcome:
    """Run under `tmp`; the table, the notes with this run's reading, the run's parameters."""
    results = run(args, tmp, cleanup)
    facts = (
        f"N={args.lines}, M={args.singles}, max_tokens={args.max_tokens}, "
        f"NIGHTOWL_BULK_IN_FLIGHT={args.bulk_in_flight}, one worker"
    )
    notes = f"{NOTES}\n{reading(results, args)}"
    return _report.Outcome(render(results, args), notes, facts)


if __name__ == "__main__":
    _report.main("batch", __doc__, options, measure)
