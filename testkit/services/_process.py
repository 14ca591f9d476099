"""Launching, readying, stopping and restarting one server process, and what servers share.

`RunningService` owns the child process (own session and process group, PR_SET_PDEATHSIG on
Linux); `_start` retries on fresh ports after a port conflict; an `atexit` hook stops what is left.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 15.0
_POLL_INTERVAL = 0.05
_PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ServiceStartError(RuntimeError):
    """A service did not become ready; the message ends with the tail of its log."""

    def __init__(self, message: str, *, port_conflict: bool = False) -> None:
        super().__init__(message)
        self.port_conflict = port_conflict


@dataclass(frozen=True)
class _Account:
    """A non-root system account to run a server as (only when we are root)."""

    name: str
    uid: int
    gid: int


@dataclass
class _LaunchSpec:
    """Everything needed to (re)launch one server process the same way."""

    command: list[str]
    cwd: Path
    stop_signal: signal.Signals
    ready: Callable[[RunningService, float], None]
    account: _Account | None = None
    after_exit: Callable[[], None] | None = None  # each time the process has ended
    on_close: Callable[[], None] | None = None  # once, when stop() ends the service for good


# Started and not yet stop()ped (running, or killed for a restart): stopped at interpreter exit.
_LIVE: dict[int, RunningService] = {}


@dataclass(eq=False)
class RunningService:
    """One started server: where to reach it, its PID, and how to stop or restart it."""

    name: str
    url: str
    pid: int
    directory: Path
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)
    _spec: _LaunchSpec = field(repr=False, kw_only=True)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, kw_only=True)
    _closed: bool = field(default=False, repr=False, kw_only=True)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """End the service for good: shut it down, wait up to `timeout` s, then SIGKILL.

        Idempotent. PostgreSQL gets SIGINT (its "fast" shutdown, which disconnects clients);
        Valkey and SeaweedFS get SIGTERM. Temporary data (a relocated PostgreSQL cluster, see
        `start_postgres`) is removed; data under `directory` is kept.
        """
        self._halt(timeout)
        self._closed = True
        _LIVE.pop(id(self), None)
        on_close, self._spec.on_close = self._spec.on_close, None
        if on_close is not None:
            on_close()

    def kill(self) -> None:
        """SIGKILL the server and its process group, like a crash; then `restart()` or `stop()`."""
        self._halt(timeout=0)

    def restart(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Shut the server down if it runs and start it again: same ports, data and config.

        PostgreSQL and SeaweedFS keep their data; Valkey comes back empty (no persistence).
        Not after `stop()`.
        """
        if self._closed:
            raise RuntimeError(f"{self.name} was ended with stop(); start a new one")
        self._halt(DEFAULT_STOP_TIMEOUT)
        deadline = time.monotonic() + timeout
        self._launch()
        try:
            self._spec.ready(self, deadline)
        except BaseException:
            self._halt(DEFAULT_STOP_TIMEOUT)
            raise

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's log."""
        return _tail(self.log_path, lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------

    def _launch(self) -> None:
        spec = self._spec
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if spec.account is not None:
            options = {"user": spec.account.uid, "group": spec.account.gid, "extra_groups": []}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                spec.command,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(spec.stop_signal),
                **options,
            )
        self.pid = self._process.pid
        _LIVE[id(self)] = self

    def _halt(self, timeout: float) -> None:
        """Send the stop signal to our PID (none if `timeout` is 0), wait, SIGKILL the group."""
        process = self._process
        if process is None:
            return
        if process.poll() is None and timeout > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self._spec.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        # Also reaps leftovers, e.g. postgres backends of a SIGKILLed postmaster.
        self._kill_group()
        process.wait(timeout=10)
        self._process = None
        if self._spec.after_exit is not None:
            self._spec.after_exit()

    def _kill_group(self) -> None:
        """SIGKILL the process group this service leads (start_new_session made pgid == pid)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def _wait_until(self, probe: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll `probe` until it returns True; fail early if the process exits."""
        last_error: BaseException | None = None
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                tail = self.log_tail()
                raise ServiceStartError(
                    f"{self.name} exited with code {code} before {what}; "
                    f"log {self.log_path}:\n{tail}",
                    port_conflict="address already in use" in tail.lower(),
                )
            try:
                if probe():
                    return
            except Exception as error:  # any failure means "not yet"
                last_error = error
            if time.monotonic() >= deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise ServiceStartError(
                    f"{self.name} (pid {self.pid}) not {what} before the deadline{detail}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)


def _prepare(directory: Path) -> Path:
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(attempt: Callable[[], RunningService], deadline: float) -> RunningService:
    """Launch a fresh `attempt()` until it is ready; new ports if another process took one."""
    for number in range(1, _PORT_ATTEMPTS + 1):
        service = attempt()
        service._launch()
        try:
            service._spec.ready(service, deadline)
        except ServiceStartError as error:
            if error.port_conflict and number < _PORT_ATTEMPTS:
                service._halt(DEFAULT_STOP_TIMEOUT)  # keeps the data for the next attempt
                continue
            service.stop()
            raise
        except BaseException:
            service.stop()
            raise
        return service
    raise AssertionError("unreachable")  # pragma: no cover


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn so the server gets `sig` if we die without stopping it (kill -9, OOM).

    Linux PR_SET_PDEATHSIG, which fires when the *thread* that started the child ends: so only
    for services started from the main thread. Runs after Popen's setuid, so it is kept.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl
            os.kill(os.getpid(), sig)

    return preexec


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"<no log: {error}>"
    return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            service.stop(timeout=5)
