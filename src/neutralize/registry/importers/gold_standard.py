"""Parse Gold Standard Impact Registry CSV exports (credit blocks, one per row).

Two layouts are accepted, as the registry publishes them: the retirements export (23 columns,
``RETIREMENT_COLUMNS``) and the issuances export (18 columns, ``ISSUANCE_COLUMNS``: no Retirement
Date, Note, Aeroplane Operator Name, Use Case or Using Entity, and Product Type placed after POA GSID).
Column order does not matter; the set of columns must be exactly one of the two. The issuances
export holds issued blocks only: a newer one replaces the issued blocks of its projects and leaves
their retirements and cancellations alone.

A block's vintage is the calendar year in Vintage, narrowed to the monitoring period when one is
given (a 2023 vintage of a 2023-09-20..2025-01-31 period runs 2023-09-20..2023-12-31). Serial
grammars: see ``serials.py``; cell formats: see ``table.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from neutralize.registry.importers.assemble import ParsedRow, assemble
from neutralize.registry.importers.countries import country_code
from neutralize.registry.importers.records import (
    BlockStatus,
    ImportedBlock,
    ImportedProject,
    ImportResult,
    Programme,
    SerialForm,
)
from neutralize.registry.importers.references import cross_references
from neutralize.registry.importers.serials import SerialError, SerialRange, parse_gs_serial
from neutralize.registry.importers.table import (
    MAX_ROWS,
    Row,
    RowError,
    calendar_date,
    identifier,
    items,
    optional_identifier,
    read_table,
    required_date,
    tonnes,
    year,
)

SERIAL = "Serial Number"
RETIREMENT_COLUMNS: tuple[str, ...] = (
    "Vintage",
    "Credit Status",
    "Quantity",
    "GSID",
    "Project Name",
    "Project Developer",
    "Country",
    "Product Type",
    "Project Type",
    "Methodology",
    "Programme of Activities",
    "POA GSID",
    "Issuance Date",
    "Retirement Date",
    "Monitoring Period Start",
    "Monitoring Period End",
    SERIAL,
    "Note",
    "Aeroplane Operator Name",
    "Label",
    "Use Case",
    "Using Entity",
    "Article Six Authorization",
)
RETIREMENT_ONLY = ("Retirement Date", "Note", "Aeroplane Operator Name", "Use Case", "Using Entity")
ISSUANCE_COLUMNS: tuple[str, ...] = tuple(c for c in RETIREMENT_COLUMNS if c not in RETIREMENT_ONLY)
STATUSES = {
    "issued": BlockStatus.ISSUED,
    "retired": BlockStatus.RETIRED,
    "cancelled": BlockStatus.CANCELLED,
    "canceled": BlockStatus.CANCELLED,
}
IDENTITY = {"name": "Project Name", "country_name": "Country"}
# What the registry keeps of these cells (its columns' lengths); a longer cell is refused, not cut.
LIMITS = {
    "Project Name": 300,
    "Project Developer": 300,
    "Methodology": 120,
    "Project Type": 80,
    SERIAL: 200,
    "Using Entity": 500,
    "Use Case": 1000,
}


def parse_gold_standard_export(source: str | Iterable[str], *, max_rows: int = MAX_ROWS) -> ImportResult:
    """Every project and block of a Gold Standard export, or ``DomainError(INVALID_IMPORT)``.

    ``source`` is the CSV text, or its lines as read from a file opened with ``newline=""``.
    """
    table = read_table(source, (RETIREMENT_COLUMNS, ISSUANCE_COLUMNS), limits=LIMITS, max_rows=max_rows)
    parsed: list[ParsedRow] = []
    problems = list(table.problems)
    for row in table.rows:
        try:
            parsed.append(_parse_row(row))
        except RowError as error:
            problems.append(error.problem(row.line))
    return assemble(Programme.GOLD_STANDARD, parsed, problems, identity=IDENTITY, serial_column=SERIAL)


def _parse_row(row: Row) -> ParsedRow:
    vintage = year(row, "Vintage")
    status = _status(row)
    if status is not BlockStatus.ISSUED and "Retirement Date" not in row.cells:
        raise RowError(
            "Credit Status",
            f"the issuances export lists issued blocks, not {status.value} ones",
            "retired and cancelled blocks come from the retirements export",
        )
    quantity = tonnes(row, "Quantity")
    project_id = identifier(row, "GSID")
    issued_on = required_date(row, "Issuance Date")
    retired_on = _retired_on(row, status)
    monitoring = _monitoring_period(row)
    serial = _serial(row, project_id, vintage, quantity)
    vintage_start, vintage_end = _vintage_window(vintage, monitoring)
    block = ImportedBlock(
        programme=Programme.GOLD_STANDARD,
        project_id=project_id,
        serial=row.required(SERIAL),
        serial_form=serial.form,
        unit_space=serial.unit_space,
        first_unit=serial.first_unit,
        last_unit=serial.last_unit,
        quantity_tonnes=serial.quantity,
        vintage_start=vintage_start,
        vintage_end=vintage_end,
        status=status,
        issued_on=issued_on,
        retired_on=retired_on,
        beneficiary=row.text("Using Entity"),
        reason=row.text("Use Case"),
        details=row.text("Note"),
        labels=items(row.text("Label"), ","),
        serial_country=serial.country,
        vintage_total_tonnes=None,
        monitoring_start=monitoring[0] if monitoring else None,
        monitoring_end=monitoring[1] if monitoring else None,
        product_type=row.text("Product Type"),
        article6_authorization=row.text("Article Six Authorization"),
        aeroplane_operator=row.text("Aeroplane Operator Name"),
        source_line=row.line,
    )
    return ParsedRow(project=_project(row, project_id, serial), block=block)


def _project(row: Row, project_id: str, serial: SerialRange) -> ImportedProject:
    country = row.required("Country")
    references = cross_references(row.text("Note"))
    if serial.form in (SerialForm.CDM_BLOCK, SerialForm.CDM_PAIR):
        references = (*references, f"CDM:{serial.project_id}")
    return ImportedProject(
        programme=Programme.GOLD_STANDARD,
        project_id=project_id,
        name=row.required("Project Name"),
        country_name=country,
        country_code=country_code(country),
        developer=row.text("Project Developer"),
        project_type=row.text("Project Type"),
        methodology=row.text("Methodology"),
        sustainable_development_goals=(),
        additional_certifications=(),
        programme_of_activities=row.text("Programme of Activities"),
        poa_id=optional_identifier(row, "POA GSID"),
        cross_references=tuple(dict.fromkeys(r for r in references if not r.startswith("GS:"))),
        source_line=row.line,
    )


def _status(row: Row) -> BlockStatus:
    text = row.required("Credit Status")
    status = STATUSES.get(text.lower())
    if status is None:
        raise RowError("Credit Status", f"unknown Credit Status {text!r}", "Issued, Retired or Cancelled")
    return status


def _retired_on(row: Row, status: BlockStatus) -> date | None:
    retired_on = calendar_date(row, "Retirement Date")
    if status is BlockStatus.RETIRED and retired_on is None:
        raise RowError(
            "Retirement Date", "a retired block needs a Retirement Date", "use the retirements export"
        )
    if status is BlockStatus.ISSUED and retired_on is not None:
        raise RowError("Retirement Date", "an issued block cannot have a Retirement Date")
    return retired_on


def _monitoring_period(row: Row) -> tuple[date, date] | None:
    start = calendar_date(row, "Monitoring Period Start")
    end = calendar_date(row, "Monitoring Period End")
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = "Monitoring Period Start" if start is None else "Monitoring Period End"
        raise RowError(missing, f"{missing} is empty", "give both ends of the monitoring period, or neither")
    if end < start:
        raise RowError("Monitoring Period End", "the monitoring period ends before it starts")
    return start, end


def _serial(row: Row, project_id: str, vintage: int, quantity: int | None) -> SerialRange:
    try:
        serial = parse_gs_serial(row.required(SERIAL))
    except SerialError as error:
        raise RowError(SERIAL, error.message, error.hint) from None
    if serial.form is SerialForm.GS and serial.project_id != project_id:
        raise RowError(SERIAL, f"the serial names project GS{serial.project_id}, the row GSID {project_id}")
    if serial.vintage_year is not None and serial.vintage_year != vintage:
        raise RowError(SERIAL, f"the serial's vintage {serial.vintage_year} differs from Vintage {vintage}")
    if serial.quantity != quantity:
        raise RowError(
            "Quantity",
            f"Quantity is {quantity} but the serial range holds {serial.quantity} units",
            "last unit − first unit + 1 must equal Quantity",
        )
    return serial


def _vintage_window(vintage: int, monitoring: tuple[date, date] | None) -> tuple[date, date]:
    start, end = date(vintage, 1, 1), date(vintage, 12, 31)
    if monitoring is None:
        return start, end
    start, end = max(start, monitoring[0]), min(end, monitoring[1])
    if end < start:
        raise RowError("Vintage", f"Vintage {vintage} lies outside the monitoring period")
    return start, end
