"""The job and chunk state machine: every write of a `jobs` or `chunks` row is a function here.

    job:    scheduled -> queued -> running(planning -> inferring -> finalizing)
                                   -> succeeded | failed | cancelled | expired
              queued -> scheduled            (its window closed before it started: `hold_jobs`)
              running(inferring) -> running(finalizing)   (the last chunk, or `finalize_complete`)
              running(finalizing) -> running(inferring)   (another round: `add_chunks`)
    chunk:  pending -> running -> done | failed | cancelled
              running -> pending             (a retryable failure: `release_chunk`)

Every claim bumps `attempt` and sets `lease_until`; every write after a claim names the attempt
and changes nothing when the attempt is stale (another worker took over after the lease expired).
A model host claims one chunk (`claim_chunk`) or many in one statement (`claim_chunks`: by
priority, tenant turns and age, SKIP LOCKED on PostgreSQL), and renews the leases of those it is
running (`renew_leases`), so a long batch keeps them while a dead host's expire.
The chunk that completes a job's set flips it to `finalizing` under a row lock on the job, so
exactly one caller learns that finalize must be enqueued (fan-in through SQL, no chords).

`enqueued_at` says when a message for the row was last sent (the reconciler re-sends rows whose
message is older than its grace period); a queued batch job with no `enqueued_at` is *held* for
fair admission (`core/fairness.py`). Bulk writes take sets of ids and return the ids they changed.

Every function takes `now` (default: the clock), so tests move time instead of sleeping.

The package is the one writer of those rows: `jobs` (stage claims, plans, the ends of a job),
`chunks` (claims, leases, a chunk's end), `bulk` (the reconciler's and admission's transitions
over sets of ids), and `_base` (the claim record and the ready predicates they share). Import
from `core.state`.
"""

from core.state._base import HELD, TERMINAL, Claim, chunk_ready, finalize_ready, plan_ready
from core.state.bulk import (
    admit_held,
    finalize_complete,
    hold_jobs,
    mark_chunks_sent,
    mark_jobs_sent,
    release_scheduled,
)
from core.state.chunks import (
    claim_chunk,
    claim_chunks,
    complete_chunk,
    fail_chunk,
    job_usage,
    release_chunk,
    renew_leases,
)
from core.state.jobs import (
    add_chunks,
    attach_input,
    cancel_job,
    claim_job,
    end_jobs,
    fail_job,
    release_job,
    save_plan,
    stop_chunks,
    succeed_job,
)

__all__ = [
    "HELD",
    "TERMINAL",
    "Claim",
    "add_chunks",
    "admit_held",
    "attach_input",
    "cancel_job",
    "chunk_ready",
    "claim_chunk",
    "claim_chunks",
    "claim_job",
    "complete_chunk",
    "end_jobs",
    "fail_chunk",
    "fail_job",
    "finalize_complete",
    "finalize_ready",
    "hold_jobs",
    "job_usage",
    "mark_chunks_sent",
    "mark_jobs_sent",
    "plan_ready",
    "release_chunk",
    "release_job",
    "release_scheduled",
    "renew_leases",
    "save_plan",
    "stop_chunks",
    "succeed_job",
]
