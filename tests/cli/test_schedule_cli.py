"""`nightowl schedule ...` against a real API process (uvicorn) on the embedded SQLite default."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.schedule import parse_params, parse_source
from core.migrate import upgrade
from core.settings import Settings
from testkit.backends import new_tenant_key, s3_values
from testkit.services import S3Service
from testkit.stack import Stack
from worker.context import WorkerContext
from worker.inline import InlineDispatcher
from worker.schedule_firing import fire_schedules

CLI_BUCKET = f"cli-{secrets.token_hex(4)}"


@pytest.fixture
def api(tmp_path: Path, redis_url: str, s3_service: S3Service) -> Iterator[tuple[Stack, str]]:
    """A uvicorn API on SQLite and S3 (SeaweedFS); yields it and an API key."""
    settings = Settings(
        home=tmp_path / "home",
        redis_url=redis_url,
        schedule_s3_buckets=[CLI_BUCKET],
        **s3_values(s3_service),  # type: ignore[arg-type]
    )
    upgrade(settings.sqlalchemy_url)
    key = new_tenant_key(settings, "acme")
    stack = Stack(settings, tmp_path)
    try:
        stack.start_api()
        yield stack, key
    finally:
        stack.stop()


def _run(stack: Stack, key: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["schedule", *args, "--api-url", stack.api_url, "--api-key", key]
    )
    return result.exit_code, result.stdout, result.stderr


def test_source_and_param_parsing() -> None:
    """s3:// URLs become bucket and prefix, folders absolute paths; values parse as JSON."""
    assert parse_source("s3://media/in/2026/") == {
        "type": "s3",
        "bucket": "media",
        "prefix": "in/2026/",
    }
    local = parse_source("relative/folder")
    assert local["type"] == "local" and Path(local["path"]).is_absolute()
    params = parse_params(['questions=["Why?"]', "language=en", "max_tokens=64"])
    assert params == {"questions": ["Why?"], "language": "en", "max_tokens": 64}


def test_schedule_commands_over_rest(api: tuple[Stack, str], s3_service: S3Service) -> None:
    """create, list, show, pause, resume, firings and delete, and errors exit 1 with the reason."""
    stack, key = api
    bucket = CLI_BUCKET
    s3_service.client().create_bucket(Bucket=bucket)
    s3_service.client().put_object(Bucket=bucket, Key="in/a.txt", Body=b"alpha")
    create = [
        "create", "--source", f"s3://{bucket}/in/", "--kind", "document.qa",
        "--param", 'questions=["What is it?"]', "--ext", ".txt", "--max-bytes", "1000",
        "--name", "nightly", "--priority", "2",
    ]  # fmt: skip
    code, out, err = _run(stack, key, *create, "--cron", "*/10 * * * *")
    assert code == 0, err
    schedule_id = out.strip().splitlines()[-1]
    code, out, _ = _run(stack, key, "list")
    assert code == 0 and schedule_id in out and "nightly" in out and f"s3://{bucket}/in/" in out
    code, out, _ = _run(stack, key, "show", schedule_id)
    shown = json.loads(out)
    assert shown["filter"] == {"extensions": [".txt"], "min_bytes": None, "max_bytes": 1000}
    assert shown["template"] == {
        "kind": "document.qa",
        "params": {"questions": ["What is it?"]},
        "priority": 2,
    }
    assert _run(stack, key, "pause", schedule_id)[1].strip() == f"{schedule_id} paused"
    assert _run(stack, key, "resume", schedule_id)[1].startswith(f"{schedule_id} active")
    ctx = WorkerContext.create(stack.settings, InlineDispatcher())
    slot = datetime.fromisoformat(shown["next_slot"])
    assert len(fire_schedules(ctx, slot + timedelta(minutes=1))) == 1
    ctx.db.dispose()
    code, out, _ = _run(stack, key, "firings", schedule_id)
    assert code == 0 and "submitted" in out and "batch_" in out
    code, _, err = _run(stack, key, *create, "--cron", "0 2 * *")
    assert code == 1 and "five fields" in err
    code, _, err = _run(stack, key, *create, "--cron", "0 2 * * *", "--window", "night")
    assert code == 2 and "exactly one of --cron and --window" in err
    assert _run(stack, key, "delete", schedule_id)[1].strip() == f"{schedule_id} deleted"
    code, _, err = _run(stack, key, "show", schedule_id)
    assert code == 1 and "404" in err
