"""nightowl worker: the Celery side (it never imports `api`).

`worker.app` (thin tasks) -> `worker.stages` (the stage runner: claim, run, record) ->
`worker.kinds` (one pipeline per job kind) -> `worker.documents`, `worker.media`, `worker.engine`.
`worker.host` is the host loop (many chunks at once, batched on the model; opt-in).
What only workers do: `worker.reconcile` (beat's repair pass, one step per concern),
`worker.batches` (finishing and expiring batches), `worker.webhooks` (delivering events),
`worker.schedule_firing` and `worker.schedule_sources` (recurring work), `worker.fetch` (URL
inputs). `worker.inline` runs the same stages in process for `nightowl run` and the tests.
"""
