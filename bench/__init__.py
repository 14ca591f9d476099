"""Benchmarks of a running nightowl stack, each a module: `python -m bench.overhead [--write]`.

They start real services and processes (see `testkit/services/`, `testkit/stack.py`), print their
results, and with `--write` record them in a section of `BENCHMARKS.md`.
"""
