"""Fault injection over the real processes: see `harness.py` and `scenarios.py`.

`tests/faults/test_faults.py` runs each scenario once; `bench/faults.py` runs them many times.
"""
