"""The nightowl processes themselves (API, Celery workers, beat) as real child processes.

Used by the end-to-end tests and the benchmarks. Each process gets its settings through
`NIGHTOWL_*` variables, logs to a file in the given folder, and is stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.queue import make_celery
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read the same `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTOWL_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif isinstance(value, list | dict):
            value = json.dumps(value, default=str)  # complex settings are read as JSON
        env[f"NIGHTOWL_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Process:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, like a crash or an OOM kill."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it does not end in time."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    """A set of nightowl processes sharing one configuration."""

    settings: Settings
    directory: Path
    processes: list[Process] = field(default_factory=list)
    api_url: str = ""

    def spawn(self, name: str, args: list[str], settings: Settings | None = None) -> Process:
        """Start `python args...` with `settings` (default: the stack's) and a log file."""
        log = self.directory / f"{name}.log"
        out = log.open("ab")
        popen = subprocess.Popen(
            [sys.executable, *args],
            env=settings_env(settings or self.settings),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_api(self) -> Process:
        """uvicorn serving the API on a free port; returns once /healthz answers."""
        port = free_port()
        process = self.spawn(
            "api",
            [
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
        )
        self.api_url = f"http://127.0.0.1:{port}"
        _wait(
            lambda: httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200, process, 30
        )
        return process

    def start_worker(self, name: str, queues: str = "ingest,infer", **overrides: Any) -> Process:
        """A solo-pool Celery worker; returns once it answers a ping (model loaded)."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        process = self.spawn(
            name,
            [
                "-m",
                "celery",
                "-A",
                "worker.app",
                "worker",
                "--pool",
                "solo",
                "-Q",
                queues,
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            settings,
        )
        app = make_celery(self.settings)
        hostname = f"{name}@{socket.gethostname()}"

        def answers() -> bool:
            return bool(app.control.ping(destination=[hostname], timeout=0.5))

        _wait(answers, process, 90)
        return process

    def start_beat(self) -> Process:
        """Celery beat, running the reconciler every `reconcile_interval_seconds`."""
        schedule = self.directory / "celerybeat-schedule"
        return self.spawn(
            "beat",
            [
                "-m",
                "celery",
                "-A",
                "worker.app",
                "beat",
                "--schedule",
                str(schedule),
                "--loglevel",
                "INFO",
            ],
        )

    def stop(self) -> None:
        """Stop every process this stack started."""
        for process in reversed(self.processes):
            process.stop()


def _wait(ready: Any, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready after {timeout}s:\n{process.tail()}")
