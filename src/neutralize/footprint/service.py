"""Footprint use cases: calculate, keep, fetch, search factors, and batch files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from neutralize import __version__
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError, Problem
from neutralize.core.ids import new_id
from neutralize.footprint.airports import nearest_codes
from neutralize.footprint.domain import ROW, activities_frame, evaluate
from neutralize.footprint.factors import Factor, FactorCatalogue, default_catalogue
from neutralize.footprint.models import Footprint
from neutralize.footprint.schemas import (
    BatchSummary,
    FactorPage,
    FactorPublic,
    FootprintLine,
    FootprintPublic,
    Reproducibility,
    Uncertainty,
)
from neutralize.footprint.tables import engine_tables
from neutralize.footprint.vocabulary import FACTOR_SETS, FIELDS

BATCH_FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")
BATCH_CHUNK_ROWS = 1_000_000
MAX_REPORTED_ERRORS = 100
_MIXED_GASES = (
    "the total adds CO2-only lines (see each line's gas_basis) to CO2e lines: for those lines "
    "other greenhouse gases are not counted"
)
_MIXED_EDITIONS = (
    "this footprint mixes {sets}: editions of one source differ (DESNZ 2025 air factors are "
    "16-42% below 2024); compare its lines with care"
)


def calculate(
    *, activities: Sequence[Mapping[str, object]], catalogue: FactorCatalogue | None = None
) -> FootprintPublic:
    """Compute a footprint line by line; raises ``DomainError`` listing every bad activity."""
    catalogue = catalogue or default_catalogue()
    if not activities:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="give at least one activity")
    out = evaluate(activities_frame(activities), engine_tables(catalogue))
    problems = _problems(out, path="activities[{row}]")
    if problems:
        raise DomainError.from_problems(problems)
    lines = [_line(row, catalogue) for row in out.iter_rows(named=True)]
    sets = sorted({line.factor.factor_set for line in lines})
    bases = {line.factor.gas_basis for line in lines}
    return FootprintPublic(
        lines=lines,
        total_kg_co2e=sum((line.kg_co2e for line in lines), Decimal("0.000000")),
        factor_sets=sets,
        warnings=_warnings(sets, bases),
        reproducibility=Reproducibility(
            input_sha256=input_sha256(activities),
            factor_sets=sets,
            factor_data_sha256=catalogue.checksum,
            engine_version=__version__,
        ),
    )


def input_sha256(activities: Sequence[Mapping[str, object]]) -> str:
    canonical = json.dumps(list(activities), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _warnings(sets: list[str], gas_bases: set[str]) -> list[str]:
    by_source: dict[str, list[str]] = {}
    for name in sets:
        by_source.setdefault(name.rsplit("-", 1)[0], []).append(name)
    warnings = [
        _MIXED_EDITIONS.format(sets=" and ".join(group)) for group in by_source.values() if len(group) > 1
    ]
    if len(gas_bases) > 1:
        warnings.append(_MIXED_GASES)
    return warnings


def _problems(out: pl.DataFrame, *, path: str) -> list[Problem]:
    failed = out.filter(pl.col("error_code").is_not_null()).head(MAX_REPORTED_ERRORS)
    problems = []
    for row in failed.iter_rows(named=True):
        where = path.format(row=row[ROW])
        field = row["error_field"]
        problems.append(
            Problem(
                code=ErrorCode(row["error_code"]),
                message=row["error_message"],
                field=f"{where}.{field}" if field else where,
                hint=_hint(row),
                row=row[ROW],
            )
        )
    return problems


def _hint(row: dict[str, Any]) -> str | None:
    if row["error_code"] == ErrorCode.UNKNOWN_AIRPORT and row["error_value"]:
        near = nearest_codes(row["error_value"])
        return "did you mean " + ", ".join(near) + "?" if near else "use a three-letter IATA airport code"
    hint: str | None = row["error_hint"]
    return hint


def _line(row: dict[str, Any], catalogue: FactorCatalogue) -> FootprintLine:
    factor = catalogue.get(row["factor_set"], row["factor_id"])
    low, high = row["uncertainty_low_kg"], row["uncertainty_high_kg"]
    return FootprintLine(
        index=row[ROW],
        ref=row["ref"],
        type=row["type"],
        kg_co2e=row["kg_co2e"],
        factor=factor_public(factor),
        amount=Decimal(repr(row["amount"])),
        amount_unit=row["amount_unit"],
        unit_multiplier=row["unit_multiplier"],
        distance_km=None if row["distance_km"] is None else Decimal(repr(row["distance_km"])),
        assumptions=[note for note in (row["notes"] or "").split("; ") if note],
        geography_differs=row["geography_differs"],
        year_differs=row["year_differs"],
        uncertainty=Uncertainty(low_kg_co2e=low, high_kg_co2e=high) if low is not None else None,
    )


@lru_cache(maxsize=8192)
def factor_public(factor: Factor) -> FactorPublic:
    return FactorPublic(
        factor_set=factor.factor_set,
        id=factor.factor_id,
        activity=factor.activity,
        value=str(factor.value),
        unit=factor.unit,
        gas_basis=factor.gas_basis,
        gwp_set=factor.gwp_set,
        edition=factor.edition,
        region=factor.region,
        year=factor.year,
        source=factor.source,
        source_url=factor.source_url,
        licence=factor.licence,
        attribution=factor.attribution,
        uncertainty_low=None if factor.uncertainty_low is None else str(factor.uncertainty_low),
        uncertainty_high=None if factor.uncertainty_high is None else str(factor.uncertainty_high),
        note=factor.note,
    )


# --- stored footprints ------------------------------------------------------------------------


def save(*, session: Session, clock: Clock, footprint: FootprintPublic) -> FootprintPublic:
    """Keep a computed footprint; returns it with its id and creation time."""
    now = clock.now()
    kept = footprint.model_copy(update={"id": new_id("fp", now), "created_at": now})
    session.add(
        Footprint(
            id=kept.id,
            created_at=now,
            input_sha256=kept.reproducibility.input_sha256,
            total_kg_co2e=kept.total_kg_co2e,
            line_count=len(kept.lines),
            result=kept.model_dump(mode="json"),
        )
    )
    session.flush()
    return kept


def get(*, session: Session, footprint_id: str) -> FootprintPublic:
    row = session.get(Footprint, footprint_id)
    if row is None:
        raise NotFoundError(f"no footprint {footprint_id!r}")
    return FootprintPublic.model_validate(row.result)


# --- factors ----------------------------------------------------------------------------------


def search_factors(
    *,
    text: str,
    factor_set: str | None = None,
    page: int = 1,
    page_size: int = 50,
    catalogue: FactorCatalogue | None = None,
) -> FactorPage:
    """Factors matching every word of ``text``, a page at a time."""
    if factor_set is not None:
        factor_set = _known_set(factor_set)
    found = (catalogue or default_catalogue()).search(text, factor_set=factor_set)
    start = (page - 1) * page_size
    return FactorPage(
        items=[factor_public(f) for f in found[start : start + page_size]],
        total=len(found),
        page=page,
        page_size=page_size,
    )


def _known_set(name: str) -> str:
    wanted = name.strip().upper()
    if wanted not in FACTOR_SETS:
        raise DomainError(
            code=ErrorCode.UNKNOWN_FACTOR_SET,
            message=f"unknown factor set {name!r}",
            problems=[
                Problem(
                    code=ErrorCode.UNKNOWN_FACTOR_SET,
                    message="unknown factor set",
                    field="factor_set",
                    hint="one of: " + ", ".join(FACTOR_SETS),
                )
            ],
        )
    return wanted


# --- batch files ------------------------------------------------------------------------------


def compute_batch(
    *,
    source: Path,
    destination: Path,
    chunk_rows: int = BATCH_CHUNK_ROWS,
    on_progress: Callable[[int, int], None] | None = None,
    catalogue: FactorCatalogue | None = None,
) -> BatchSummary:
    """Compute every row of a CSV, Parquet or JSON Lines file into a Parquet (or CSV) file.

    Rows are numbered from 1 (the first data row). A bad row gets its error code in the output
    and the other rows still compute.
    """
    tables = engine_tables(catalogue or default_catalogue())
    total_rows = _count_rows(source)
    results: list[pl.DataFrame] = []
    done = 0
    for chunk in _chunks(source, chunk_rows, total_rows):
        results.append(evaluate(chunk, tables))
        done += chunk.height
        if on_progress is not None:
            on_progress(done, total_rows)
    out = pl.concat(results) if results else evaluate(activities_frame([]), tables)
    _write(out, destination)
    return _summary(out)


def _summary(out: pl.DataFrame) -> BatchSummary:
    failed = out.filter(pl.col("error_code").is_not_null())
    total = out.select(pl.col("kg_co2e").sum()).item()
    return BatchSummary(
        rows=out.height,
        computed=out.height - failed.height,
        failed=failed.height,
        total_kg_co2e=total if total is not None else Decimal("0.000000"),
        errors=[p.as_dict() for p in _problems(out, path="row {row}")],
    )


def _check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in BATCH_FORMATS:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"cannot read {path.name}: use one of {', '.join(BATCH_FORMATS)}",
        )
    return suffix


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn the table reader's refusal of a file (empty, ragged rows, not Parquet at all) into the
    caller's problem: the whole file is refused with one code."""
    try:
        yield
    except pl.exceptions.PolarsError as error:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"{path.name} is not a readable {path.suffix[1:]} file: {str(error).splitlines()[0]}",
        ) from None


def _scan(path: Path) -> pl.LazyFrame:
    suffix = _check_format(path)
    if suffix == ".parquet":
        frame = pl.scan_parquet(path)
    elif suffix == ".csv":
        frame = pl.scan_csv(path, infer_schema=False)
    else:
        raise AssertionError("JSON Lines are read line by line")
    with _reading(path):
        names = frame.collect_schema().names()
    unknown = [c for c in names if c not in FIELDS]
    if unknown:
        raise DomainError(
            code=ErrorCode.UNKNOWN_FIELD,
            message=f"{path.name} has columns the vocabulary does not know: {', '.join(unknown)}",
            problems=[
                Problem(code=ErrorCode.UNKNOWN_FIELD, message="unknown column", field=c) for c in unknown
            ],
        )
    return frame


def _count_rows(path: Path) -> int:
    if _check_format(path) in (".jsonl", ".ndjson"):
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    frame = _scan(path)
    with _reading(path):
        return int(frame.select(pl.len()).collect().item())


def _chunks(path: Path, chunk_rows: int, total: int) -> Iterator[pl.DataFrame]:
    if _check_format(path) in (".jsonl", ".ndjson"):
        yield from _json_line_chunks(path, chunk_rows)
        return
    frame = _scan(path)
    for offset in range(0, total, chunk_rows):
        with _reading(path):
            chunk = frame.slice(offset, chunk_rows).collect()
        yield chunk.with_row_index(ROW, offset=offset + 1).with_columns(pl.col(ROW).cast(pl.Int64))


def _json_line_chunks(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    records: list[object] = []
    offset = 1
    with path.open("rb") as handle:  # a line that is not UTF-8 is one malformed row, not a bad file
        for line in handle:
            if not line.strip():
                continue
            records.append(_json_record(line))
            if len(records) == chunk_rows:
                yield _numbered(records, offset)
                offset += len(records)
                records = []
    if records:
        yield _numbered(records, offset)


def _json_record(line: bytes) -> object:
    try:
        value: object = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # reported as a malformed row
    return value


def _numbered(records: list[object], offset: int) -> pl.DataFrame:
    frame = activities_frame(records)
    return frame.with_row_index(ROW, offset=offset).with_columns(pl.col(ROW).cast(pl.Int64))


def _write(out: pl.DataFrame, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = destination.suffix.lower()
    if suffix == ".parquet":
        out.write_parquet(destination)
    elif suffix == ".csv":
        out.write_csv(destination)
    elif suffix in (".jsonl", ".ndjson"):
        out.write_ndjson(destination)
    else:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"cannot write {destination.name}: use .parquet, .csv or .jsonl",
        )
