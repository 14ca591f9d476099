"""The `nightowl` command on the embedded default: keys, run, dev tiny-model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.auth import authenticate
from core.db import Database
from core.settings import Settings
from testkit.samples import OBSERVATORY_PAGES, pdf_bytes


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_models_dir: Path) -> Path:
    """NIGHTOWL_* variables for the embedded default with the tiny model; returns home."""
    home = tmp_path / "home"
    for name, value in {
        "HOME": str(home),
        "MODELS_DIR": str(tiny_models_dir),
        "MODEL": "tiny",
        "DRAFT_MODEL": "tiny",
        "MAX_TOKENS": "16",
    }.items():
        monkeypatch.setenv(f"NIGHTOWL_{name}", value)
    for name in ("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "S3_ENDPOINT_URL"):
        monkeypatch.delenv(f"NIGHTOWL_{name}", raising=False)
    return home


def test_keys_create_prints_a_working_key_last(embedded: Path) -> None:
    """`keys create` prints a key as the last stdout line, and that key authenticates."""
    result = CliRunner().invoke(app, ["keys", "create", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("no_")
    db = Database(Settings().sqlalchemy_url)
    with db.transaction() as session:
        assert authenticate(session, key).tenant_id.startswith("ten_")
    db.dispose()


def test_run_answers_questions_in_process_and_names_the_artifacts(
    embedded: Path, tmp_path: Path
) -> None:
    """`nightowl run` runs document.qa to the end and prints where the artifacts are."""
    pdf = tmp_path / "observatory.pdf"
    pdf.write_bytes(pdf_bytes(OBSERVATORY_PAGES))
    result = CliRunner().invoke(app, ["run", str(pdf), "-q", "Who founded it?", "-q", "When?"])
    assert result.exit_code == 0, result.output
    paths = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if ": " in line]
    names = sorted(Path(p).name for p in paths)
    assert names == ["answers.md", "result.json"]
    answers = Path(next(p for p in paths if p.endswith("answers.md"))).read_text()
    assert "Who founded it?" in answers and "noise" in answers
    assert all(Path(p).is_relative_to(embedded.resolve()) for p in paths)


def test_run_reports_a_failed_job_and_exits_nonzero(embedded: Path, tmp_path: Path) -> None:
    """A corrupt PDF makes `nightowl run` exit 1 with the error code."""
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(pdf_bytes(OBSERVATORY_PAGES)[:300])
    result = CliRunner().invoke(app, ["run", str(pdf), "-q", "Anything?"])
    assert result.exit_code == 1
    assert "invalid_input" in result.output


def test_dev_tiny_model_builds_a_loadable_model(tmp_path: Path) -> None:
    """`dev tiny-model DIR` writes a target and a drafter folder with weights and config."""
    result = CliRunner().invoke(app, ["dev", "tiny-model", str(tmp_path / "tiny")])
    assert result.exit_code == 0, result.output
    for part in ("target", "drafter"):
        folder = tmp_path / "tiny" / part
        assert (folder / "config.json").is_file()
        assert list(folder.glob("*.safetensors"))


def test_demo_falls_back_to_the_tiny_model_and_says_so(
    embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the real weights out of reach, `demo` uses the tiny model, warns, and succeeds."""
    monkeypatch.delenv("NIGHTOWL_MODEL")
    monkeypatch.delenv("NIGHTOWL_DRAFT_MODEL")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "could not be loaded" in result.output
    assert "NOISE" in result.output
    assert (embedded / "demo-observatory.pdf").is_file()
    assert "answers.md" in result.stdout
