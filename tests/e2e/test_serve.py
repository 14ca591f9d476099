"""`nightowl serve` on one machine (embedded Valkey, SQLite, local folder), driven by the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from testkit.stack import ROOT, free_port

pytestmark = pytest.mark.timeout(240)


def _nightowl(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _closed_window() -> str:
    """A two-hour window starting three hours from now (so closed while the test runs)."""
    start = datetime.now(UTC) + timedelta(hours=3)
    return f"{start:%H}:00-{start + timedelta(hours=2):%H}:00 UTC"


def _batch_through_the_cli(tmp_path: Path, env: dict[str, str], key: str) -> None:
    """`batch submit --wait` runs a JSONL batch; `batch download` saves its output file."""
    pdf_id = httpx.post(
        f"{env['NIGHTOWL_API_URL']}/v1/files",
        files={"file": ("o.pdf", pdf_bytes(OBSERVATORY_PAGES))},
        headers={"Authorization": f"Bearer {key}"},
    ).json()["id"]
    lines = [
        json.dumps(
            {
                "custom_id": f"q{i}",
                "method": "POST",
                "url": "/v1/jobs",
                "body": {
                    "kind": "document.qa",
                    "input": {"file_id": pdf_id},
                    "params": {"questions": [f"Question {i}?"]},
                },
            }
        )
        for i in range(2)
    ]
    jsonl = tmp_path / "batch.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    submitted = _nightowl(["batch", "submit", str(jsonl), "--wait"], env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    batch_id = submitted.stdout.strip().splitlines()[-1]
    assert "completed: 2 completed, 0 failed" in submitted.stderr
    saved = _nightowl(["batch", "download", batch_id, "--dir", str(tmp_path / "out")], env)
    assert saved.returncode == 0, saved.stderr
    output = Path(saved.stdout.strip().splitlines()[0]).read_text().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in output) == ["q0", "q1"]
    # The same lines for tonight's window (closed now, see the serve env): accepted, waiting.
    later = _nightowl(["batch", "submit", str(jsonl), "--window", "night"], env)
    assert later.returncode == 0, later.stdout + later.stderr
    later_id = later.stdout.strip().splitlines()[-1]
    assert "window night" in later.stderr
    jobs = httpx.get(
        f"{env['NIGHTOWL_API_URL']}/v1/jobs",
        params={"batch_id": later_id},
        headers={"Authorization": f"Bearer {key}"},
    ).json()["data"]
    assert [job["status"] for job in jobs] == ["scheduled", "scheduled"]


def test_serve_runs_a_job_submitted_with_the_cli_and_stops_its_children(
    tmp_path: Path, tiny_model: object, tiny_models_dir: Path
) -> None:
    """serve is ready, runs a job that `submit --wait` sent, and stops everything it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTOWL_")}
    env |= {
        "NIGHTOWL_HOME": str(tmp_path / "home"),
        "NIGHTOWL_MODELS_DIR": str(tiny_models_dir),
        "NIGHTOWL_MODEL": "tiny",
        "NIGHTOWL_DRAFT_MODEL": "tiny",
        "NIGHTOWL_MAX_TOKENS": "16",
        "NIGHTOWL_WINDOWS": json.dumps({"night": _closed_window()}),
    }
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        children = psutil.Process(server.pid).children(recursive=True)
        assert len(children) >= 2  # worker and beat
        # Valkey daemonizes: it is not our child, but its pid file names it.
        valkey_pid = int((tmp_path / "home" / "valkey" / "valkey.pid").read_text())
        children.append(psutil.Process(valkey_pid))
        created = _nightowl(["keys", "create", "--tenant", "me"], env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        pdf = tmp_path / "observatory.pdf"
        pdf.write_bytes(pdf_bytes(OBSERVATORY_PAGES))
        client_env = env | {"NIGHTOWL_API_URL": f"http://127.0.0.1:{port}", "NIGHTOWL_API_KEY": key}
        submitted = _nightowl(["submit", str(pdf), "-q", "Who founded it?", "--wait"], client_env)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = submitted.stdout.strip().splitlines()[-1]
        assert job_id.startswith("job_")
        assert "Who founded it?" in submitted.stdout + submitted.stderr
        shown = _nightowl(["result", job_id], client_env)
        assert shown.returncode == 0 and '"answers"' in shown.stdout
        _batch_through_the_cli(tmp_path, client_env, key)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []
