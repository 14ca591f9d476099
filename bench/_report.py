"""Shared by the benchmarks: the frame of their `main`, one `## name` section of BENCHMARKS.md,
and their memory children (`bench/_memory.py`) run in fresh interpreters.

Each module gives `main` its section name, a callback adding its options and a `measure` run
under a temp dir; the frame parses, measures, prints the table and with `--write` records it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"

HEADER = """# Benchmarks

Numbers here are written by the benchmark modules under `bench/`, each from one real run with
`--write` (`.venv/bin/python -m bench.<name> --write`), which replaces that module's `## <name>`
section below. Every run starts its own PostgreSQL, Valkey and SeaweedFS and the nightowl
processes (API, Celery worker) as real child processes on this machine, with the tiny
random-weight model, so model time is small and the stack around it is what is measured.

The machine is shared and noisy: absolute numbers move between runs, sometimes a lot. Compare the
ratios, which are measured side by side in one run, against the same baseline on the same
services, rather than absolute numbers across runs or machines.
"""


def machine() -> str:
    """`uname -m` and the core count, as the sections record them."""
    return f"`{platform.machine()}`, {os.cpu_count()} cores (os.cpu_count())"


def today() -> str:
    """The date of a run, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_child(module: str, *args: str) -> dict[str, Any]:
    """Run the memory child `module` with `args` in a fresh interpreter; its JSON line."""
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_section(name: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the `## name` section of `path` (up to the next `## `) with `body`, or append it."""
    text = path.read_text() if path.exists() else HEADER
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


@dataclass(frozen=True)
class Outcome:
    """One run as the console and its `## name` section show it."""

    table: str
    notes: str  # Markdown bullets, below the table
    facts: str = ""  # the run's parameters, for the section's Date line (e.g. "N=30, M=10")
    failed: bool = False  # then the command exits 1, after printing (and writing) the outcome


Measure = Callable[[argparse.Namespace, Path, contextlib.ExitStack], Outcome]


def at_least(low: float, kind: type[int] | type[float] = int) -> Callable[[str], float]:
    """An argparse `type` that reads a `kind` and refuses values below `low`."""

    def read(text: str) -> float:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low:g}, not {text}")
        return value

    read.__name__ = kind.__name__  # argparse names the type in "invalid int value" errors
    return read


def main(
    name: str,
    doc: str | None,
    options: Callable[[argparse.ArgumentParser], None],
    measure: Measure,
    argv: list[str] | None = None,
) -> None:
    """`python -m bench.<name> [options] [--write]`: run `measure` in a temp dir that is removed,
    with whatever it registers on the exit stack, on any exit (SIGTERM included)."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc)
    options(parser)
    parser.add_argument("--write", action="store_true", help="record it in BENCHMARKS.md")
    args = parser.parse_args(argv)
    args.started = time.perf_counter()
    signal.signal(signal.SIGTERM, _terminate)  # so that `kill <pid>` also cleans up
    command = shlex.join([".venv/bin/python", "-m", f"bench.{name}", *sys.argv[1:]])
    tmp = Path(tempfile.mkdtemp(prefix=f"nightowl-bench-{name}-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)  # last, after the processes
        outcome = measure(args, tmp, cleanup)
    elapsed = time.perf_counter() - args.started
    print(
        f"\n{outcome.table}\n\n{outcome.notes}\n\ncommand: {command}\n"
        f"run took {elapsed:.0f} s after imports"
    )
    if args.write:
        facts = f" {outcome.facts};" if outcome.facts else ""
        date = (
            f"Date: {today()}; machine: {machine()};{facts} the run took {elapsed:.0f} s "
            "(plus a few seconds of imports)."
        )
        date = textwrap.fill(date, 98, initial_indent="- ", subsequent_indent="  ")
        write_section(name, f"{outcome.table}\n\n{outcome.notes}\n{date}\n- Command: `{command}`")
        print(f"wrote the `## {name}` section of {BENCHMARKS}")
    if outcome.failed:
        raise SystemExit(1)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
