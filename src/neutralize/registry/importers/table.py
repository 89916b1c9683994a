"""Reading a registry CSV export into rows, and reading its cells: the checks every importer shares.

A file is accepted whole or not at all. File-level faults (no header, missing or unknown columns,
too many rows, CSV syntax) stop the import at once; a bad row is reported with the line it starts
on (the header is line 1; a quoted cell may span several lines) and the column at fault, and the
other rows are still checked so one run lists every bad row.

Accepted cell formats:

- quantities: whole tonnes, digits with or without thousands separators (``1234`` or ``1,234``);
- dates: ISO ``YYYY-MM-DD``, ISO date-times (``2026-04-13T12:35:58.842275``; the calendar date as
  written is kept, the time dropped) and day-first ``DD/MM/YYYY`` (``03/05/2021`` is 3 May 2021),
  the order Verra's web export uses.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NoReturn

from neutralize.core.errors import DomainError, ErrorCode, Problem

MAX_ROWS = 250_000  # per file; split larger exports
MAX_CELL_CHARS = 10_000
MAX_TONNES = 10**12  # a million million tonnes: more than any registry holds
MAX_PROBLEMS = 100  # problems listed in one error; the message gives the full count
HEADER_LINE = 1
MIN_YEAR, MAX_YEAR = 1990, 2100

_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_PLAIN = re.compile(r"^\d{1,13}$")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_DAY_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ID = re.compile(r"^\d{1,12}$")
_FLOAT_ID = re.compile(r"^(\d{1,12})\.0$")
DATE_HINT = "YYYY-MM-DD or DD/MM/YYYY"


class RowError(Exception):
    """A cell that cannot be read; its row is reported once, with this column and message."""

    def __init__(self, field: str | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.hint = hint

    def problem(self, line: int) -> Problem:
        return problem(line, self.field, self.message, self.hint)


def problem(line: int, field: str | None, message: str, hint: str | None = None) -> Problem:
    """An import problem at ``line`` of the file."""
    return Problem(code=ErrorCode.INVALID_IMPORT, message=message, field=field, hint=hint, row=line)


def reject(problems: Sequence[Problem]) -> NoReturn:
    """Refuse the whole file: raise one ``DomainError`` listing its problems in line order."""
    ordered = sorted(problems, key=lambda p: p.row or 0)
    shown = ordered[:MAX_PROBLEMS]
    more = f"; the first {len(shown)} are listed" if len(ordered) > len(shown) else ""
    message = f"{len(ordered)} problem(s) in the file{more}; nothing was imported"
    raise DomainError(code=ErrorCode.INVALID_IMPORT, message=message, problems=list(shown))


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: the line it starts on and its trimmed cells by column name."""

    line: int
    cells: dict[str, str]

    def text(self, column: str) -> str | None:
        """The cell's text, or ``None`` if it is empty."""
        return self.cells.get(column) or None

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise RowError(column, f"{column} is empty")
        return value


@dataclass(frozen=True, slots=True)
class Table:
    """The rows of a file whose header matched ``columns``, and the rows that could not be split."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    problems: tuple[Problem, ...]


def read_table(
    source: str | Iterable[str],
    layouts: Sequence[tuple[str, ...]],
    *,
    limits: Mapping[str, int] | None = None,
    max_rows: int = MAX_ROWS,
) -> Table:
    """Split ``source`` into rows under the layout (set of columns) its header matches.

    ``source`` is the file's text, or its lines as read from a file opened with ``newline=""``.
    ``limits`` caps the length of some columns' cells (what the registry keeps of them); every other
    cell may hold up to ``MAX_CELL_CHARS``. Raises ``DomainError`` at once for file-level faults.
    """
    records = _records(source)
    first = next(records, None)
    if first is None:
        reject([problem(HEADER_LINE, None, "the file is empty", "the first line must be the header")])
    header = [name.strip() for name in first[1]]
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    columns = _match_layout(header, layouts)
    rows: list[Row] = []
    problems: list[Problem] = []
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) + len(problems) >= max_rows:
            reject([problem(line, None, f"the file has more than {max_rows} rows", "split the export")])
        try:
            rows.append(_row(line, columns, cells, limits or {}))
        except RowError as error:
            problems.append(error.problem(line))
    return Table(columns=columns, rows=tuple(rows), problems=tuple(problems))


def _records(source: str | Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    lines = io.StringIO(source, newline="") if isinstance(source, str) else iter(source)
    reader = csv.reader(lines, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            reject([problem(start, None, f"the file is not valid CSV: {error}", "check quoting")])
        yield start, cells


def _match_layout(header: list[str], layouts: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        reject([problem(HEADER_LINE, name, f"column {name!r} appears more than once") for name in repeated])
    given = set(header)
    for layout in layouts:
        if given == set(layout):
            return tuple(header)
    closest = min(layouts, key=lambda layout: len(given ^ set(layout)))
    expected = ", ".join(closest)
    problems = [
        problem(HEADER_LINE, name, f"column {name!r} is missing", f"expected columns: {expected}")
        for name in closest
        if name not in given
    ]
    problems += [
        problem(HEADER_LINE, name, f"column {name!r} is not part of this export", f"expected: {expected}")
        for name in header
        if name not in closest
    ]
    reject(problems)


def _row(line: int, columns: tuple[str, ...], cells: list[str], limits: Mapping[str, int]) -> Row:
    if len(cells) != len(columns):
        raise RowError(
            None, f"expected {len(columns)} cells, found {len(cells)}", "quote cells that contain commas"
        )
    trimmed = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
    for column, cell in trimmed.items():
        limit = limits.get(column, MAX_CELL_CHARS)
        if len(cell) > limit:
            raise RowError(column, f"{column} is longer than {limit} characters ({len(cell)})")
        if "\x00" in cell:
            raise RowError(column, f"{column} holds a NUL character", "no database can keep it as text")
    return Row(line=line, cells=trimmed)


def tonnes(row: Row, column: str, *, required: bool = True, minimum: int = 1) -> int | None:
    """Whole tonnes, with or without thousands separators (``1,234``)."""
    text = row.text(column)
    if text is None:
        if required:
            raise RowError(column, f"{column} is empty", "a whole number of tonnes, e.g. 1,234")
        return None
    if not (_PLAIN.match(text) or _GROUPED.match(text)):
        raise RowError(column, f"{column} is not a whole number of tonnes: {text!r}", "e.g. 1234 or 1,234")
    value = int(text.replace(",", ""))
    if not minimum <= value <= MAX_TONNES:
        raise RowError(column, f"{column} is out of range: {text}", f"between {minimum} and {MAX_TONNES}")
    return value


def calendar_date(row: Row, column: str) -> date | None:
    """An optional date in one of the accepted formats (see the module docstring)."""
    text = row.text(column)
    return None if text is None else _date(column, text)


def required_date(row: Row, column: str) -> date:
    """A date in one of the accepted formats; an empty cell is an error."""
    text = row.text(column)
    if text is None:
        raise RowError(column, f"{column} is empty", DATE_HINT)
    return _date(column, text)


def _date(column: str, text: str) -> date:
    iso = _ISO.match(text)
    day_first = _DAY_FIRST.match(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if day_first:
            return date(int(day_first[3]), int(day_first[2]), int(day_first[1]))
    except ValueError:
        pass  # matched the shape but not the calendar, e.g. 31/02/2024
    raise RowError(column, f"{column} is not a date: {text!r}", DATE_HINT)


def year(row: Row, column: str) -> int:
    """A calendar year between 1990 and 2100."""
    text = row.required(column)
    if not re.fullmatch(r"\d{4}", text) or not MIN_YEAR <= int(text) <= MAX_YEAR:
        raise RowError(column, f"{column} is not a year: {text!r}", "e.g. 2024")
    return int(text)


def identifier(row: Row, column: str) -> str:
    """A numeric registry id; an empty cell is an error."""
    text = row.text(column)
    if text is None:
        raise RowError(column, f"{column} is empty", "the registry's numeric id")
    return _identifier(column, text)


def optional_identifier(row: Row, column: str) -> str | None:
    """A numeric registry id, or ``None`` if the cell is empty."""
    text = row.text(column)
    return None if text is None else _identifier(column, text)


def _identifier(column: str, text: str) -> str:
    floated = _FLOAT_ID.match(text)  # ``11191.0``: a spreadsheet's float, read as ``11191``
    digits = floated[1] if floated else text
    if not _ID.match(digits):
        raise RowError(column, f"{column} is not a numeric id: {text!r}", "digits only, e.g. 1340")
    return str(int(digits))


def items(text: str | None, separator: str) -> tuple[str, ...]:
    """The distinct non-empty items of a list cell, in order."""
    if text is None:
        return ()
    seen = dict.fromkeys(part.strip() for part in text.split(separator))
    return tuple(item for item in seen if item)
