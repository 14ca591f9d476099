"""A no-op Celery task on nightowl's own Celery configuration: the floor a job is compared to.

The app is `core.queue.make_celery(settings)` with three changes, nothing else:

- its own queue, `bench.noop`, so nightowl's workers never take the task (and it theirs);
- a result backend on the same Valkey, database 1: nightowl's app ignores results, so without one
  the sender could not see the task complete. The sender subscribes to the result before it
  publishes (Celery's Redis backend does so in `on_task_call`) and wakes on its pub/sub message,
  so a round trip is: publish -> worker takes it (late ack, prefetch 1) -> runs -> stores and
  publishes the result -> sender wakes. No polling interval is added;
- the task is `noop`, which returns None at once.

`celery -A bench._noop worker` finds `app` here, built from the `NIGHTOWL_*` environment; the
benchmark itself calls `make_noop_app(settings)`.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu import Queue

from core.queue import make_celery
from core.settings import Settings

if TYPE_CHECKING:
    from testkit.stack import Process, Stack

NOOP_TASK = "bench.noop"
NOOP_QUEUE = "bench.noop"
RESULT_DB = 1
WORKER_ARGS = ["--pool", "solo", "-Q", NOOP_QUEUE, "-n", "noop@%h", "--without-gossip"]
WORKER_ARGS += ["--without-mingle", "--loglevel", "WARNING"]


def result_backend_url(redis_url: str) -> str:
    """`redis_url` pointed at database `RESULT_DB` (nightowl's broker uses the URL's own db)."""
    base, _, last = redis_url.rstrip("/").rpartition("/")
    if base.startswith("redis") and last.isdigit():
        return f"{base}/{RESULT_DB}"
    return f"{redis_url.rstrip('/')}/{RESULT_DB}"


def make_noop_app(settings: Settings) -> Celery:
    """nightowl's Celery app, on a queue of its own, with a result backend and a `noop` task."""
    if not settings.redis_url:
        raise ValueError("the no-op benchmark needs NIGHTOWL_REDIS_URL")
    app = make_celery(settings)
    app.conf.update(
        result_backend=result_backend_url(settings.redis_url),
        result_expires=600,
        task_queues=[Queue(NOOP_QUEUE)],
        task_default_queue=NOOP_QUEUE,
        task_routes={NOOP_TASK: {"queue": NOOP_QUEUE}},
        beat_schedule={},
    )

    @app.task(name=NOOP_TASK, ignore_result=False)  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    return app


@functools.cache
def _worker_app() -> Celery:
    return make_noop_app(Settings())


def __getattr__(name: str) -> Any:
    """`app` for `celery -A bench._noop`, made on first access from the environment."""
    if name == "app":
        return _worker_app()
    raise AttributeError(name)


def round_trip(app: Celery, expires: float, timeout: float = 30) -> float:
    """Seconds from publishing one `noop` to seeing its result."""
    start = time.perf_counter()
    app.send_task(NOOP_TASK, expires=expires).get(timeout=timeout)
    return time.perf_counter() - start


def burst(app: Celery, count: int, expires: float, timeout: float = 120) -> float:
    """Seconds from publishing the first of `count` no-ops (all at once) to the last result."""
    start = time.perf_counter()
    results = [app.send_task(NOOP_TASK, expires=expires) for _ in range(count)]
    for result in results:
        result.get(timeout=timeout)
    return time.perf_counter() - start


def start_worker(stack: Stack, app: Celery, timeout: float = 60) -> Process:
    """One solo worker of the no-op app as our child, stopped with `stack`; waits for its ping."""
    from testkit.stack import ROOT, Process, settings_env

    log = stack.directory / "noop.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench._noop", "worker", *WORKER_ARGS],
            env=settings_env(stack.settings),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    process = Process("noop", popen, log)
    stack.processes.append(process)
    hostname, deadline = f"noop@{socket.gethostname()}", time.monotonic() + timeout
    while not app.control.ping(destination=[hostname], timeout=0.5):
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no-op worker did not start:\n{process.tail()}")
    return process
