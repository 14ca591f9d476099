"""Fault injection over the real processes: see `harness.py` and `scenarios.py`."""
