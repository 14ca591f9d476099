"""nightowl core: only what `api` and `worker` share (it imports neither).

- `core.state`: the job and chunk state machine; every write of a `jobs` or `chunks` row.
- `core.windows`: overnight windows and `StartGate`, the one rule for "may this work start now".
- `core.jobs`, `core.batch_intake`, `core.fairness`, `core.quota`, `core.kinds`: intake of jobs
  and batches (the API, batch lines and schedule firings all create jobs the same way), fair
  admission of batch jobs, and the kinds' parameter models.
- `core.files`, `core.storage`, `core.sniff`, `core.netguard`: storing files (one writer of a
  `File` row plus its object), object storage, content sniffing, the SSRF guard.
- `core.webhooks`: recording events with their state change (delivery is `worker.webhooks`).
- `core.db`, `core.settings`, `core.logging`, `core.errors`, `core.queue`, `core.auth`,
  `core.tenancy`, `core.usage`, `core.faults`, `core.migrate`: the plumbing.

`tests/test_layers.py` checks that no core module is reached only from `worker`.
"""
