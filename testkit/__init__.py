"""Dev-only helpers shared by `tests/` and `bench/` (not part of the wheel).

Real services (`testkit.services`), the nightowl processes as children (`testkit.stack`), what
points nightowl at them (`testkit.backends`), sample inputs (`testkit.samples`,
`testkit.media_samples`), the fault harness and scenarios (`testkit.faults`) and Markdown tables
(`testkit.markdown`). Nothing here imports `tests` or `bench`.
"""
