"""Fault injection over the real processes: the harness and scenarios are in `testkit/faults/`."""
