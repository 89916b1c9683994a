"""The ``neutralize`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from neutralize.core.config import get_settings
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.logging import configure_logging

app = typer.Typer(help="Neutralize: measure, neutralize, certify.", no_args_is_help=True)
factors_app = typer.Typer(help="The emission-factor catalogue.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(factors_app, name="factors")
app.add_typer(db_app, name="db")

USAGE_ERROR = 2
out = Console()
err = Console(stderr=True)


def _fail(error: DomainError) -> NoReturn:
    err.print_json(json.dumps(error.as_dict(), ensure_ascii=False))
    raise typer.Exit(USAGE_ERROR)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Start the web platform and the JSON API."""
    import uvicorn

    from neutralize.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    host = host or settings.host
    port = port or settings.port
    out.print(
        f"Neutralize is running at [bold]http://{host}:{port}/[/] (API docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    from neutralize.core.migrations import upgrade

    upgrade(get_settings())
    out.print("database is up to date")


@app.command()
def footprint(
    source: Annotated[
        str | None, typer.Argument(help='JSON file with {"activities": [...]}, or - for stdin')
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="json or table")] = "json",
    batch: Annotated[Path | None, typer.Option(help="CSV, Parquet or JSON Lines file of activities")] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="where --batch writes (.parquet, .csv, .jsonl)")
    ] = None,
) -> None:
    """Compute a footprint; exit code 2 on bad input."""
    from neutralize.footprint import service

    try:
        if batch is not None:
            _batch(batch, out_path)
            return
        if source is None:
            raise DomainError(code=ErrorCode.INVALID_REQUEST, message="give a FILE, - for stdin, or --batch")
        activities = _read_request(source)
        result = service.calculate(activities=activities)
    except DomainError as error:
        _fail(error)
    if output_format == "table":
        _print_table(result.model_dump(mode="json"))
    else:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")


def _read_request(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST, message=f"cannot read {source}: {error.strerror}"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("activities"), list):
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message='expected {"activities": [...]}')
    activities: list[Any] = body["activities"]
    from neutralize.footprint.schemas import MAX_ACTIVITIES

    if len(activities) > MAX_ACTIVITIES:
        raise DomainError(
            code=ErrorCode.TOO_MANY_ACTIVITIES,
            message=f"at most {MAX_ACTIVITIES} activities per request; use --batch for more",
        )
    return activities


def _batch(source: Path, destination: Path | None) -> None:
    from neutralize.footprint import service

    if destination is None:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="--batch needs --out")
    if not source.is_file():
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"no such file: {source}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("computing", total=None)
        summary = service.compute_batch(
            source=source,
            destination=destination,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    err.print(
        f"{summary.rows} rows: {summary.computed} computed, {summary.failed} failed; "
        f"total {summary.total_kg_co2e} kg CO2e -> {destination}"
    )
    for problem in summary.errors[:10]:
        err.print(f"  {problem['field']}: {problem['code']} {problem['message']}")


def _print_table(result: dict[str, Any]) -> None:
    table = Table(title="Footprint")
    for name in ("#", "activity", "kg CO2e", "factor", "assumptions"):
        table.add_column(name, justify="right" if name == "kg CO2e" else "left")
    for line in result["lines"]:
        factor = line["factor"]
        table.add_row(
            str(line["index"]),
            line["type"] + (f" {line['distance_km']} km" if line["distance_km"] else ""),
            line["kg_co2e"],
            f"{factor['value']} kg {factor['gas_basis']}/{factor['unit']} "
            f"({factor['edition']}, {factor['id']})",
            "; ".join(line["assumptions"]),
        )
    table.add_row("", "total", result["total_kg_co2e"], ", ".join(result["factor_sets"]), "")
    out.print(table)
    for warning in result["warnings"]:
        err.print(f"warning: {warning}")


@factors_app.command("search")
def factors_search(
    text: Annotated[str, typer.Argument(help="words that must all appear")],
    factor_set: Annotated[str | None, typer.Option("--set", help="restrict to one factor set")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=200)] = 20,
) -> None:
    """Find factors by words in their id, activity, unit, set or region."""
    from neutralize.footprint import service

    found = service.search_factors(text=text, factor_set=factor_set, page=page, page_size=page_size)
    table = Table(title=f"{found.total} factors (page {found.page})")
    for name in ("set", "id", "activity", "value", "unit"):
        table.add_column(name)
    for factor in found.items:
        table.add_row(factor.factor_set, factor.id, factor.activity, factor.value, factor.unit)
    out.print(table)
