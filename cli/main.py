"""The `nightowl` command: run, demo, serve, migrate, keys, submit, status, result, dev."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.batch import batch_app
from cli.schedule import schedule_app
from core.logging import configure_logging
from core.settings import Settings

app = typer.Typer(help="nightowl: bulk media analysis with a local model.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
dev_app = typer.Typer(help="Developer tools.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(dev_app, name="dev")
app.add_typer(batch_app, name="batch")
app.add_typer(schedule_app, name="schedule")
console = Console(stderr=True)

ApiUrl = Annotated[str, typer.Option(envvar="NIGHTOWL_API_URL", help="API base URL.")]
ApiKey = Annotated[str, typer.Option(envvar="NIGHTOWL_API_KEY", help="API key (no_...).")]


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings)
    return settings


def _print_answers(result: dict[str, Any]) -> None:
    table = Table("question", "answer", "citations", show_lines=True)
    for item in result.get("answers", []):
        cites = ", ".join(f"{c['passage_id']} (p. {c['page']})" for c in item["citations"])
        table.add_row(item["question"], item["answer"][:400], cites)
    console.print(table)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    kind: Annotated[str, typer.Option(help="Job kind.")] = "document.qa",
    question: Annotated[list[str] | None, typer.Option("-q", "--question")] = None,
    params: Annotated[str | None, typer.Option(help="Extra params as JSON.")] = None,
) -> None:
    """Run one job in this process on the embedded default (SQLite + local folder)."""
    from cli.local import run_local

    settings = _settings()
    job_params: dict[str, Any] = json.loads(params) if params else {}
    if question:
        job_params["questions"] = question
    outcome = run_local(settings, file, kind, job_params)
    _report(outcome)


def _report(outcome: Any) -> None:
    job = outcome.job
    if job.status != "succeeded":
        console.print(f"[red]job {job.id} {job.status}: {job.error_code}: {job.error_message}")
        raise typer.Exit(1)
    if outcome.result.get("warning"):
        console.print(f"[bold yellow]WARNING: {outcome.result['warning']}")
    _print_answers(outcome.result)
    console.print(f"job {job.id} succeeded; artifacts under {outcome.storage_root}:")
    for name, key in sorted(outcome.artifacts.items()):
        typer.echo(f"  {name}: {outcome.storage_root / key}")


@app.command()
def demo() -> None:
    """Make a sample PDF and answer questions about it end to end on the embedded default."""
    from cli.demo import SAMPLE_QUESTIONS, load_demo_engine, write_sample_pdf
    from cli.local import run_local

    settings = _settings()
    engine, warning = load_demo_engine(settings)
    if warning:
        console.print(f"[bold yellow]WARNING: {warning}")
    settings.home.mkdir(parents=True, exist_ok=True)
    pdf = write_sample_pdf(settings.home / "demo-observatory.pdf")
    console.print(f"sample document: {pdf}; model: {engine.model_id}")
    outcome = run_local(
        settings,
        pdf,
        "document.qa",
        {"questions": SAMPLE_QUESTIONS, "max_tokens": 48},
        engine=engine,
    )
    _report(outcome)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the API, one worker and beat on this machine (embedded Valkey if no Redis URL)."""
    from cli.serve import serve as run_server

    run_server(_settings(), host, port)


@app.command()
def migrate() -> None:
    """Migrate the database to the newest schema."""
    from core.migrate import upgrade

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    console.print("database at head")


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Option(help="Tenant name.")]) -> None:
    """Create an API key for a tenant (made if new); the key is the last line of stdout."""
    from core.auth import create_key
    from core.db import Database
    from core.migrate import upgrade

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    with Database(settings.sqlalchemy_url).transaction() as session:
        key = create_key(session, tenant)
    console.print(f"API key for tenant {tenant!r} (shown once):")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id or its first 8 characters.")],
) -> None:
    """Revoke an API key; it is refused from the next request on."""
    from core.auth import revoke_key
    from core.db import Database
    from core.errors import Conflict

    settings = _settings()
    try:
        with Database(settings.sqlalchemy_url).transaction() as session:
            count = revoke_key(session, key_id)
    except Conflict as exc:
        console.print(f"[red]{exc.message}")
        raise typer.Exit(1) from None
    console.print(f"revoked {count} key(s)")
    if not count:
        raise typer.Exit(1)


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
    kind: Annotated[str, typer.Option()] = "document.qa",
    question: Annotated[list[str] | None, typer.Option("-q", "--question")] = None,
    params: Annotated[str | None, typer.Option(help="Extra params as JSON.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the job to finish.")] = False,
) -> None:
    """Upload FILE and submit a job over the REST API."""
    from cli.client import ApiClient

    client = ApiClient(api_url, api_key)
    job_params: dict[str, Any] = json.loads(params) if params else {}
    if question:
        job_params["questions"] = question
    uploaded = client.upload(file)
    job = client.create_job(
        {"kind": kind, "input": {"file_id": uploaded["id"]}, "params": job_params}
    )
    console.print(f"submitted {job['id']} ({job['status']})")
    if wait:
        job = client.wait(job["id"])
        if job["status"] == "succeeded":
            _print_answers(client.result(job["id"]))
        else:
            console.print(f"[red]{job['status']}: {job.get('error')}")
            raise typer.Exit(1)
    typer.echo(job["id"])


@app.command()
def status(job_id: str, api_url: ApiUrl = "http://127.0.0.1:8000", api_key: ApiKey = "") -> None:
    """Print a job as JSON."""
    from cli.client import ApiClient

    typer.echo(json.dumps(ApiClient(api_url, api_key).job(job_id), indent=2))


@app.command()
def result(job_id: str, api_url: ApiUrl = "http://127.0.0.1:8000", api_key: ApiKey = "") -> None:
    """Print a job's result JSON."""
    from cli.client import ApiClient

    typer.echo(json.dumps(ApiClient(api_url, api_key).result(job_id), indent=2, ensure_ascii=False))


@dev_app.command("tiny-model")
def tiny_model(directory: Annotated[Path, typer.Argument()]) -> None:
    """Build the tiny random-weight Gemma 4 model, drafter and tokenizer into DIRECTORY."""
    from worker.engine import build_tiny_model

    paths = build_tiny_model(directory)
    console.print(f"target: {paths.target}\ndrafter: {paths.drafter}")


if __name__ == "__main__":  # pragma: no cover
    app()
