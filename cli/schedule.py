"""`nightowl schedule create | list | show | pause | resume | delete | firings` over REST."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from cli.client import ApiClient, ApiError

schedule_app = typer.Typer(
    help="Recurring batches over an S3 prefix or a folder.", no_args_is_help=True
)
console = Console(stderr=True)

ApiUrl = Annotated[str, typer.Option(envvar="NIGHTOWL_API_URL", help="API base URL.")]
ApiKey = Annotated[str, typer.Option(envvar="NIGHTOWL_API_KEY", help="API key (no_...).")]
DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def _api_errors() -> Iterator[None]:
    """An API error is printed as its code and message, and the command exits 1."""
    try:
        yield
    except ApiError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


def _print_table(table: Table) -> None:
    # Wide enough that ids and keys are never folded, even when stdout is not a terminal.
    out = Console()
    out.width = max(out.width, 200)
    out.print(table)


def parse_source(text: str) -> dict[str, str]:
    """`s3://bucket/prefix` or a folder path (made absolute: the server reads it as given)."""
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if not parts.netloc:
            raise typer.BadParameter("an S3 source is s3://bucket/prefix")
        return {"type": "s3", "bucket": parts.netloc, "prefix": parts.path.lstrip("/")}
    return {"type": "local", "path": str(Path(text).expanduser().absolute())}


def parse_params(items: list[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that parses as JSON (numbers, lists, true) is taken as such."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--param {item!r} is not name=value")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


@schedule_app.command("create")
def create(
    source: Annotated[str, typer.Option(help="s3://bucket/prefix or a folder on the server.")],
    kind: Annotated[str, typer.Option(help="Job kind of each new object.")],
    api_url: ApiUrl = DEFAULT_URL,
    api_key: ApiKey = "",
    cron: Annotated[str | None, typer.Option(help='Cron expression, e.g. "0 2 * * *".')] = None,
    window: Annotated[str | None, typer.Option(help="Fire when this named window opens.")] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of the cron expression.")] = "UTC",
    param: Annotated[list[str] | None, typer.Option(help="Job param name=value.")] = None,
    ext: Annotated[list[str] | None, typer.Option(help="Only these extensions, e.g. .mp3")] = None,
    min_bytes: Annotated[int | None, typer.Option()] = None,
    max_bytes: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option(min=0, max=9)] = None,
    name: Annotated[str | None, typer.Option()] = None,
    completion_window: Annotated[str, typer.Option()] = "24h",
) -> None:
    """Create a schedule; prints its id last."""
    if (cron is None) == (window is None):
        raise typer.BadParameter("give exactly one of --cron and --window")
    template: dict[str, Any] = {"kind": kind, "params": parse_params(param or [])}
    if priority is not None:
        template["priority"] = priority
    body: dict[str, Any] = {
        "name": name,
        "cron": cron,
        "window": window,
        "timezone": timezone,
        "source": parse_source(source),
        "filter": {"extensions": ext or [], "min_bytes": min_bytes, "max_bytes": max_bytes},
        "template": template,
        "completion_window": completion_window,
    }
    with _api_errors():
        schedule = ApiClient(api_url, api_key).create_schedule(body)
    console.print(f"schedule {schedule['id']} {schedule['status']}; next: {schedule['next_slot']}")
    typer.echo(schedule["id"])


@schedule_app.command("list")
def list_(api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """List your schedules."""
    table = Table("id", "name", "status", "when", "source", "kind", "next slot")
    with _api_errors():
        rows = ApiClient(api_url, api_key).schedules()["data"]
    for s in rows:
        when = f"{s['cron']} {s['timezone']}" if s["cron"] else f"window {s['window']}"
        src = s["source"]
        where = f"s3://{src['bucket']}/{src['prefix']}" if src["type"] == "s3" else src["path"]
        table.add_row(
            s["id"],
            s["name"] or "",
            s["status"],
            when,
            where,
            s["template"]["kind"],
            s["next_slot"] or "",
        )
    _print_table(table)


@schedule_app.command("show")
def show(schedule_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Print a schedule as JSON."""
    with _api_errors():
        schedule = ApiClient(api_url, api_key).schedule(schedule_id)
    typer.echo(json.dumps(schedule, indent=2))


@schedule_app.command("pause")
def pause(schedule_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Stop firing; slots passing while paused are skipped."""
    with _api_errors():
        schedule = ApiClient(api_url, api_key).schedule(schedule_id, "pause")
    typer.echo(f"{schedule['id']} {schedule['status']}")


@schedule_app.command("resume")
def resume(schedule_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Fire again from the next slot on (missed slots are not backfilled)."""
    with _api_errors():
        schedule = ApiClient(api_url, api_key).schedule(schedule_id, "resume")
    typer.echo(f"{schedule['id']} {schedule['status']}; next: {schedule['next_slot']}")


@schedule_app.command("delete")
def delete(schedule_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """Delete a schedule; its firings are kept as history on the server."""
    with _api_errors():
        ApiClient(api_url, api_key).delete_schedule(schedule_id)
    typer.echo(f"{schedule_id} deleted")


@schedule_app.command("firings")
def firings(schedule_id: str, api_url: ApiUrl = DEFAULT_URL, api_key: ApiKey = "") -> None:
    """List a schedule's firings: slot, status, objects, batch, error."""
    table = Table("slot", "status", "listed", "new", "skipped", "batch", "error")
    with _api_errors():
        rows = ApiClient(api_url, api_key).schedule_firings(schedule_id)["data"]
    for f in rows:
        table.add_row(
            f["slot"],
            f["status"],
            str(f["objects_listed"]),
            str(f["objects_new"]),
            str(f["objects_skipped"]),
            f["batch_id"] or "",
            f["error"] or "",
        )
    _print_table(table)
