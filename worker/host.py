"""A model host running many chunks at once, fed from SQL (with `NIGHTOWL_HOST_LOOP=true`).

An `infer` delivery starts the host loop, and its task runs until no ready chunk is left:

1. claim ready chunks in one statement (`core.state.claim_chunks`: job priority, then tenant
   turns, then age; chunks of closed windows wait), up to the free places of the batch;
2. run each claimed chunk in a thread of its own through the same steps as a one-at-a-time
   `infer` (`worker.stages.run_claimed_chunk`): its media decoding and result writing overlap
   the model, and its model calls meet in the engine's generation loop (`Engine.start_loop`),
   where they decode together as one continuous batch;
3. every `lease_seconds / 3`, renew the leases of the chunks in flight (`renew_leases`), so a
   long batch keeps them, while a host that dies lets them expire and the reconciler re-sends
   them;
4. claim again as chunks finish (continuous admission); stop when nothing is ready and nothing
   runs, and hand the engine back to one call at a time.

The delivery's own chunk is claimed like any other: it is ready, so the first claim takes it
unless a loop elsewhere already did; deliveries whose chunk was taken exit at once (they find it
running or done), as before. Window, cancellation and attempt rules apply per chunk exactly as
in `run_claimed_chunk`.

Celery (acks_late, Redis visibility timeout): the delivery that started a loop stays
unacknowledged while the loop runs. When the loop outlasts the visibility timeout, Redis hands
that message to another worker: its delivery finds the chunk taken or done and, being an
`infer` delivery, starts that host's own loop, which claims whatever is ready. So a redelivery
costs nothing and spreads work; nothing runs twice (every claim is conditional). The batch
size is `NIGHTOWL_MAX_BATCH`; sizing it per host from memory (`Engine.batch_plan`) is next.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from core.logging import bound_context, get_logger
from core.state import Claim, claim_chunks, renew_leases
from core.windows import StartGate
from worker.context import WorkerContext
from worker.stages import infer_chunk, run_claimed_chunk

log = get_logger("worker.host")
_POLL_SECONDS = 1.0


def infer_delivery(ctx: WorkerContext, chunk_id: str) -> None:
    """What an `infer` message does: run the host loop, or the one chunk (the default)."""
    if ctx.settings.host_loop:
        run_host(ctx, chunk_id)
    else:
        infer_chunk(ctx, chunk_id)


def run_host(ctx: WorkerContext, chunk_id: str | None = None) -> int:
    """Run ready chunks, many at once, until none is left; returns how many this host ran."""
    places = ctx.settings.max_batch
    engine = ctx.engine()
    engine.start_loop(places)
    running = _Running()
    done = peak = 0
    stop = threading.Event()
    heartbeat = threading.Thread(
        target=_heartbeat, args=(ctx, running, stop), name="nightowl-heartbeat", daemon=True
    )
    with bound_context(delivery_chunk=chunk_id), ThreadPoolExecutor(places) as pool:
        heartbeat.start()
        try:
            while True:
                for claim in _claim(ctx, places - running.count()):
                    running.add(pool.submit(_run, ctx, claim), claim)
                futures = running.futures()
                if not futures:
                    break
                finished, _ = wait(futures, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                done += running.remove(finished)
        finally:
            stop.set()
            heartbeat.join()
            peak = engine.loop.peak_rows if engine.loop is not None else 0
            engine.stop_loop()
            ctx.release_model_memory()
    log.info("host.loop.done", chunks=done, peak_rows=peak)
    return done


class _Running:
    """The chunks in flight, shared by the loop and its heartbeat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[Future[None], Claim] = {}

    def add(self, future: Future[None], claim: Claim) -> None:
        with self._lock:
            self._claims[future] = claim

    def remove(self, futures: set[Future[None]]) -> int:
        with self._lock:
            for future in futures:
                self._claims.pop(future, None)
        return len(futures)

    def count(self) -> int:
        with self._lock:
            return len(self._claims)

    def futures(self) -> list[Future[None]]:
        with self._lock:
            return list(self._claims)

    def claims(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())


def _claim(ctx: WorkerContext, free: int) -> list[Claim]:
    if free <= 0:
        return []
    gate = StartGate.at(ctx.settings.window_table, ctx.clock())
    with ctx.db.transaction() as session:
        return claim_chunks(
            session, free, ctx.settings.lease_seconds, window_open=gate.allows_window()
        )


def _run(ctx: WorkerContext, claim: Claim) -> None:
    try:
        run_claimed_chunk(ctx, claim, release_memory=False)
    except Exception:
        # The chunk's lease runs out and the reconciler re-sends it; the loop goes on.
        log.exception("host.chunk.crashed", chunk_id=claim.id)


def _heartbeat(ctx: WorkerContext, running: _Running, stop: threading.Event) -> None:
    interval = ctx.settings.lease_seconds / 3
    while not stop.wait(interval):
        claims = running.claims()
        if not claims:
            continue
        with ctx.db.transaction() as session:
            renewed = renew_leases(session, claims, ctx.settings.lease_seconds)
        lost = {c.id for c in claims} - {c.id for c in renewed}
        if lost:
            log.warning("host.lease.lost", chunks=sorted(lost))
