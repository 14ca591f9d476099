"""Real PostgreSQL, Valkey and SeaweedFS servers on free loopback ports, stopped by PID.

Used by the pytest fixtures (`tests/fixtures/services.py`), the benchmarks and the dev script::

    with start_postgres(tmp / "pg") as pg, start_valkey(tmp / "kv") as kv:
        engine = sqlalchemy.create_engine(pg.url)

Every server runs in the foreground as our own child (no daemonizing), in its own session and
process group, bound to 127.0.0.1 only, with its data, configuration and log under the directory
it is given. `RunningService.stop()` sends the service's shutdown signal to that PID, waits, then
SIGKILLs the process group the service leads. Services still running when the interpreter exits
are stopped by an `atexit` hook.

Layout: `_process` (RunningService: launch, readiness polling, stop/kill/restart, free ports,
log tails, PR_SET_PDEATHSIG, the atexit hook), `postgres`, `valkey`, `seaweedfs` (with
`S3Service`). Everything is re-exported here: import from `testkit.services`.
"""

from ._process import DEFAULT_START_TIMEOUT as DEFAULT_START_TIMEOUT
from ._process import DEFAULT_STOP_TIMEOUT as DEFAULT_STOP_TIMEOUT
from ._process import LOOPBACK, RunningService, ServiceStartError
from .postgres import POSTGRES_DATABASE, POSTGRES_USER, start_postgres
from .seaweedfs import S3_BUCKET, S3_REGION, S3Service, start_seaweedfs
from .valkey import start_valkey

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
