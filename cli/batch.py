"""`nightowl batch submit | status | cancel | retry | download`: OpenAI-style batches over REST."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.client import ApiClient

batch_app = typer.Typer(help="Batches of jobs from a JSONL file.", no_args_is_help=True)
console = Console(stderr=True)

ApiUrl = Annotated[str, typer.Option(envvar="NIGHTOWL_API_URL", help="API base URL.")]
ApiKey = Annotated[str, typer.Option(envvar="NIGHTOWL_API_KEY", help="API key (no_...).")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _show(batch: dict[str, object]) -> None:
    typer.echo(json.dumps(batch, indent=2))


@batch_app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = "",
    completion_window: Annotated[str, typer.Option("--completion-window")] = "24h",
    window: Annotated[
        str | None, typer.Option(help="Run only inside this named window (e.g. night).")
    ] = None,
    not_before: Annotated[
        datetime | None, typer.Option(help="Start no earlier than this time (ISO 8601).")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(min=0, max=9, help="0-9, 9 first; lines default to 3.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="POST signed batch and job events here.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the batch, with a progress bar.")] = False,
) -> None:
    """Upload FILE (lines of {custom_id, method, url, body}) and start a batch; prints its id.

    --window, --not-before, --priority and --webhook-url apply to the lines that do not set
    their own.
    """
    client = ApiClient(api_url, api_key)
    uploaded = client.upload(file)
    batch = client.create_batch(
        uploaded["id"],
        completion_window,
        window=window,
        not_before=not_before.isoformat() if not_before else None,
        priority=priority,
        webhook_url=webhook_url,
    )
    if batch["status"] == "failed":
        for error in batch["errors"]["data"]:
            console.print(f"[red]line {error['line']}: {error['code']}: {error['message']}")
        raise typer.Exit(1)
    when = f", window {batch['window']}" if batch.get("window") else ""
    console.print(
        f"batch {batch['id']} {batch['status']}: {batch['request_counts']['total']} requests{when}"
    )
    if wait:
        batch = client.wait_batch(batch["id"])
        counts = batch["request_counts"]
        console.print(
            f"{batch['status']}: {counts['completed']} completed, {counts['failed']} failed"
        )
    typer.echo(batch["id"])


@batch_app.command("status")
def status(batch_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Print a batch as JSON."""
    _show(ApiClient(api_url, api_key).batch(batch_id))


@batch_app.command("cancel")
def cancel(batch_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Cancel a batch's unfinished requests (finished ones are kept)."""
    _show(ApiClient(api_url, api_key).batch(batch_id, "cancel"))


@batch_app.command("retry")
def retry(batch_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Start a new batch over a finished batch's failed and expired requests."""
    _show(ApiClient(api_url, api_key).batch(batch_id, "retry"))


@batch_app.command("download")
def download(
    batch_id: str,
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = "",
    directory: Annotated[Path, typer.Option("--dir")] = Path(),
) -> None:
    """Save the batch's output and error files as BATCH_output.jsonl and BATCH_errors.jsonl."""
    client = ApiClient(api_url, api_key)
    batch = client.batch(batch_id)
    directory.mkdir(parents=True, exist_ok=True)
    for field, name in (("output_file_id", "output"), ("error_file_id", "errors")):
        if batch.get(field):
            path = directory / f"{batch_id}_{name}.jsonl"
            path.write_bytes(client.file_content(str(batch[field])))
            typer.echo(str(path))
