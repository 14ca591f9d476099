"""Fault injection, many times over: each scenario of `tests/faults/` runs `--iterations` times
(default 20) with a fixed `--seed`, on one set of real services and fresh nightowl processes.

Prints the table of runs, accepted jobs, lost, duplicates, stuck, internal re-executions and
recovery time; `--write` replaces the `## faults` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import _report
from tests.faults.harness import Report, render, start_services
from tests.faults.scenarios import SCENARIOS, run_scenario
from worker.engine import TINY, build_tiny_model

NOTES = """\
- Each run: a fresh database and fresh API, solo workers (tiny model) and beat on one
  PostgreSQL, Valkey and SeaweedFS; lease 4 s, reconciler every 1 s with a 1 s grace; the
  scenario submits `document.qa` jobs over HTTP, injects its fault, then drains, replacing dead
  workers as a supervisor would. Definitions and scenarios: `tests/faults/harness.py`,
  `tests/faults/scenarios.py`.
- accepted: 202 (or 200 for a retried Idempotency-Key); refused: any other answer (503 while
  PostgreSQL is down); orphans: refused requests that left a row. lost: no row or never picked
  up; duplicates: more than one `job.succeeded` for a job; stuck: not terminal at the deadline;
  failed: a job other than the poison one ended `failed`. Re-executions: chunk claims beyond the
  first plus job-stage claims beyond plan and finalize; claim taken: deliveries (Redis
  redeliveries, reconciler re-sends) that found their chunk or stage already claimed or done and
  exited. Recovery: end of the fault to the last job's `finished_at`.
- Pass: 0 lost, 0 duplicates, 0 stuck, 0 failed, 0 orphans; the poison job `failed` with
  `attempts_exhausted`."""


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace, tmp: Path) -> list[Report]:
    """Every chosen scenario `args.iterations` times; a run that raised counts as a problem."""
    build_tiny_model(tmp / "models" / TINY)
    rng = random.Random(args.seed)
    reports: list[Report] = []
    with start_services(tmp / "services") as services:
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
                print(
                    f"{name} #{i + 1}: {time.perf_counter() - started:.0f} s {verdict}", flush=True
                )
                shutil.rmtree(tmp / f"{name}-{i}", ignore_errors=True)
    return reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--iterations", type=int, default=20, help="runs per scenario (20)")
    parser.add_argument("--seed", type=int, default=6, help="for the fault timings (6)")
    parser.add_argument("--jobs", type=int, default=4, help="jobs per run (default 4)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--write", action="store_true", help="record it in BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.jobs < 2:
        parser.error("--iterations must be >= 1 and --jobs >= 2")
    signal.signal(signal.SIGTERM, _terminate)  # so that `kill <pid>` also cleans up
    command = shlex.join([".venv/bin/python", "-m", "bench.faults", *sys.argv[1:]])
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="nightowl-faults-"))
    try:
        reports = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    table = render(reports)
    failed = sum(not r.passed for r in reports)
    print(f"\n{table}\n\n{failed} of {len(reports)} runs failed; took {elapsed:.0f} s\n{command}")
    if args.write:
        body = (
            f"{table}\n\n{NOTES}\n- Date: {_report.today()}; machine: {_report.machine()};\n"
            f"  {args.iterations} iterations per scenario, {args.jobs} jobs per run, seed "
            f"{args.seed}; {failed} of {len(reports)} runs failed; the run took "
            f"{elapsed:.0f} s.\n- Command: `{command}`"
        )
        _report.write_section("faults", body)
        print(f"wrote the `## faults` section of {_report.BENCHMARKS}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
