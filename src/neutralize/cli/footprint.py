"""``neutralize footprint`` and ``neutralize factors``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from neutralize.cli.common import err, fail, out, read_json
from neutralize.core.errors import DomainError, ErrorCode

factors_app = typer.Typer(help="The emission-factor catalogue.", no_args_is_help=True)


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
        fail(error)
    if output_format == "table":
        _print_table(result.model_dump(mode="json"))
    else:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")


def _read_request(source: str) -> list[Any]:
    body = read_json(source)
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
