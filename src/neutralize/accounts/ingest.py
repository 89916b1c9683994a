"""Reading record files (JSON Lines, CSV, Parquet) into the raw table the engine credits.

Rows are numbered from 1, the first record. A file that cannot be read as a whole (too big, an
unknown format, unknown columns, broken CSV or Parquet) is refused with one code; a bad line or
row is kept with its number and refused on its own, so the valid rows of the same file still count.
JSON values become the text a CSV cell would hold (``text_value``), so every format takes one path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from neutralize.accounts.batch import MALFORMED_COLUMN, ROW, UNKNOWN_COLUMN
from neutralize.accounts.records import FIELD_ORDER
from neutralize.core.errors import DomainError, ErrorCode, Problem

FORMATS = (".jsonl", ".ndjson", ".csv", ".parquet")
MAX_FILE_BYTES = 4 * 1024**3
MAX_RECORDS = 50_000_000
MAX_LINE_BYTES = 16 * 1024


def text_value(value: object) -> str | None:
    """A JSON scalar as CSV text (strings as given); objects and arrays as text no field accepts."""
    if isinstance(value, str):  # the most common first
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "<" + type(value).__name__ + ">"


def text_row(record: Mapping[str, object]) -> dict[str, str | None]:
    """One JSON object as text values, keys kept (unknown ones too, so they can be refused)."""
    return {str(key): text_value(value) for key, value in record.items()}


def records_frame(records: Iterable[object], *, first_row: int = 1) -> pl.DataFrame:
    """The raw table for records given as JSON values, numbered from ``first_row``."""
    items = list(records)
    columns: dict[str, list[str | None]] = {
        name: [None] * len(items) for name in (*FIELD_ORDER, UNKNOWN_COLUMN, MALFORMED_COLUMN)
    }
    known = {name: columns[name] for name in FIELD_ORDER}
    unknown, malformed = columns[UNKNOWN_COLUMN], columns[MALFORMED_COLUMN]
    for n, record in enumerate(items):
        if not isinstance(record, Mapping):
            malformed[n] = "not a JSON object"
            continue
        for key, value in record.items():  # a record's own fields only: far fewer than FIELD_ORDER
            column = known.get(str(key))
            if column is not None:
                column[n] = text_value(value)
            elif unknown[n] is None:
                unknown[n] = str(key)
    frame = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))
    return frame.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))


def read_records(
    path: Path, *, max_bytes: int = MAX_FILE_BYTES, max_records: int = MAX_RECORDS
) -> pl.DataFrame:
    """The raw table of a record file; raises ``DomainError`` when the file as a whole is unusable."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"cannot read {path.name}: use one of {', '.join(FORMATS)}",
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise DomainError(
            code=ErrorCode.PAYLOAD_TOO_LARGE, message=f"{path.name} has {size:,} bytes; at most {max_bytes:,}"
        )
    if suffix in (".jsonl", ".ndjson"):
        frame = records_frame(_json_lines(path, max_records))
    else:
        frame = _table(path, suffix)
    if frame.height > max_records:
        raise DomainError(
            code=ErrorCode.TOO_MANY_RECORDS, message=f"{path.name} has more than {max_records:,} records"
        )
    return frame


def _json_lines(path: Path, max_records: int) -> Iterable[object]:
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            count += 1
            if count > max_records:
                raise DomainError(
                    code=ErrorCode.TOO_MANY_RECORDS,
                    message=f"{path.name} has more than {max_records:,} records",
                )
            yield _json_value(line)


def _json_value(line: bytes) -> object:
    if len(line) > MAX_LINE_BYTES:
        return None  # refused as a malformed row, like text that is not JSON
    try:
        value: object = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value


def _table(path: Path, suffix: str) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False) if suffix == ".csv" else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"{path.name} is not a readable {suffix[1:]} file: {error}",
        ) from None
    unknown = [name for name in frame.columns if name not in FIELD_ORDER]
    if unknown:
        raise DomainError(
            code=ErrorCode.UNKNOWN_FIELD,
            message=f"{path.name} has columns a record does not have: {', '.join(unknown)}",
            problems=[
                Problem(code=ErrorCode.UNKNOWN_FIELD, message="unknown column", field=name)
                for name in unknown
            ],
        )
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
