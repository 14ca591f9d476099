"""Shared by the benchmarks: a Markdown table, and one `## name` section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

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


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with the columns padded so it also reads well as plain text."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def machine() -> str:
    """`uname -m` and the core count, as the sections record them."""
    return f"`{platform.machine()}`, {os.cpu_count()} cores (os.cpu_count())"


def today() -> str:
    """The date of a run, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


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
