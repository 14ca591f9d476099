"""Fault injection, many times over: each scenario of `testkit/faults/` runs `--iterations` times
(default 20) with a fixed `--seed`, on one set of real services and fresh nightowl processes.

Prints the table of runs, accepted jobs, lost, duplicates, stuck, internal re-executions and
recovery time; `--write` replaces the `## faults` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import time
from pathlib import Path

from bench import _report
from bench._report import at_least
from testkit.faults.harness import Report, render, start_services
from testkit.faults.scenarios import SCENARIOS, run_scenario
from worker.engine import TINY, build_tiny_model

NOTES = """\
- Each run: a fresh database and fresh API, solo workers (tiny model) and beat on one
  PostgreSQL, Valkey and SeaweedFS; lease 4 s, reconciler every 1 s with a 1 s grace; the
  scenario submits `document.qa` jobs over HTTP, injects its fault, then drains, replacing dead
  workers as a supervisor would. Definitions and scenarios: `testkit/faults/harness.py`,
  `testkit/faults/scenarios.py`.
- accepted: 202 (or 200 for a retried Idempotency-Key); refused: any other answer (503 while
  PostgreSQL is down); orphans: refused requests that left a row. lost: no row or never picked
  up; duplicates: more than one `job.succeeded` for a job; stuck: not terminal at the deadline;
  failed: a job other than the poison one ended `failed`. Re-executions: chunk claims beyond the
  first plus job-stage claims beyond plan and finalize; claim taken: deliveries (Redis
  redeliveries, reconciler re-sends) that found their chunk or stage already claimed or done and
  exited. Recovery: end of the fault to the last job's `finished_at`.
- Pass: 0 lost, 0 duplicates, 0 stuck, 0 failed, 0 orphans; the poison job `failed` with
  `attempts_exhausted`."""


def run(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> list[Report]:
    """Every chosen scenario `args.iterations` times; a run that raised counts as a problem."""
    build_tiny_model(tmp / "models" / TINY)
    rng = random.Random(args.seed)
    reports: list[Report] = []
    services = cleanup.enter_context(start_services(tmp / "services"))
    for name in args.scenario or list(SCENARIOS):
        for i in range(args.iterations):
            started = time.perf_counter()
            try:
                report = run_scenario(
                    name, services, tmp / f"{name}-{i}", tmp / "models", rng, args.jobs
                )
            except AssertionError as error:
                report = Report(name, problems=[str(error).splitlines()[0][:300]])
            reports.append(report)
            verdict = "ok" if report.passed else f"FAILED {report}"
            print(f"{name} #{i + 1}: {time.perf_counter() - started:.0f} s {verdict}", flush=True)
            shutil.rmtree(tmp / f"{name}-{i}", ignore_errors=True)
    return reports


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=at_least(1), default=20, help="runs per scenario (20)")
    parser.add_argument("--seed", type=int, default=6, help="for the fault timings (6)")
    parser.add_argument("--jobs", type=at_least(2), default=4, help="jobs per run (default 4)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))


def measure(args: argparse.Namespace, tmp: Path, cleanup: contextlib.ExitStack) -> _report.Outcome:
    """Run the scenarios under `tmp`; the table, the notes, and whether any run failed."""
    reports = run(args, tmp, cleanup)
    failed = sum(not r.passed for r in reports)
    print(f"{failed} of {len(reports)} runs failed", flush=True)
    facts = (
        f"{args.iterations} iterations per scenario, {args.jobs} jobs per run, seed {args.seed}; "
        f"{failed} of {len(reports)} runs failed"
    )
    return _report.Outcome(render(reports), NOTES, facts, failed=failed > 0)


if __name__ == "__main__":
    _report.main("faults", __doc__, options, measure)
