"""Parse the Verra VCS public registry export (issuances and retirements, one block per row).

The export has one row per serial block: blocks still active carry no Retirement/Cancellation Date,
retired or cancelled blocks carry one. The export does not say which of the two a dated block is
(as carbonplan/offsets-db-data notes in ``vcs.py``); we read a block as cancelled when its Retirement
Reason mentions cancellation and as retired otherwise. Serial grammars: see ``serials.py``; cell
formats: see ``table.py``.
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
)
from neutralize.registry.importers.references import cross_references
from neutralize.registry.importers.serials import SerialError, SerialRange, parse_vcs_serial
from neutralize.registry.importers.table import (
    MAX_ROWS,
    Row,
    RowError,
    calendar_date,
    identifier,
    items,
    read_table,
    required_date,
    tonnes,
)

SERIAL = "Serial Number"
COLUMNS: tuple[str, ...] = (
    "Issuance Date",
    "Sustainable Development Goals",
    "Vintage Start",
    "Vintage End",
    "ID",
    "Name",
    "Country/Area",
    "Project Type",
    "Methodology",
    "Total Vintage Quantity",
    "Quantity Issued",
    SERIAL,
    "Additional Certifications",
    "Retirement/Cancellation Date",
    "Retirement Beneficiary",
    "Retirement Reason",
    "Retirement Details",
)
# Project attributes that every row of one project must agree on, and the column each comes from.
IDENTITY = {"name": "Name", "country_name": "Country/Area"}
# What the registry keeps of these cells (its columns' lengths); a longer cell is refused, not cut.
LIMITS = {
    "Name": 300,
    "Methodology": 120,
    "Project Type": 80,
    SERIAL: 200,
    "Retirement Beneficiary": 500,
    "Retirement Reason": 1000,
}


def parse_verra_export(source: str | Iterable[str], *, max_rows: int = MAX_ROWS) -> ImportResult:
    """Every project and block of a Verra export, or ``DomainError(INVALID_IMPORT)`` listing every bad row.

    ``source`` is the CSV text, or its lines as read from a file opened with ``newline=""``.
    """
    table = read_table(source, (COLUMNS,), limits=LIMITS, max_rows=max_rows)
    parsed: list[ParsedRow] = []
    problems = list(table.problems)
    for row in table.rows:
        try:
            parsed.append(_parse_row(row))
        except RowError as error:
            problems.append(error.problem(row.line))
    return assemble(Programme.VERRA, parsed, problems, identity=IDENTITY, serial_column=SERIAL)


def _parse_row(row: Row) -> ParsedRow:
    project = _project(row)
    vintage_start = required_date(row, "Vintage Start")
    vintage_end = required_date(row, "Vintage End")
    if vintage_end < vintage_start:
        raise RowError("Vintage End", "the vintage ends before it starts", "Vintage End ≥ Vintage Start")
    quantity = tonnes(row, "Quantity Issued")
    vintage_total = tonnes(row, "Total Vintage Quantity", required=False, minimum=0)
    issued_on = required_date(row, "Issuance Date")
    retired_on = calendar_date(row, "Retirement/Cancellation Date")
    serial = _serial(row, project.project_id, (vintage_start, vintage_end), quantity)
    labels = items(row.text("Additional Certifications"), ";")
    block = ImportedBlock(
        programme=Programme.VERRA,
        project_id=project.project_id,
        serial=row.required(SERIAL),
        serial_form=serial.form,
        unit_space=serial.unit_space,
        first_unit=serial.first_unit,
        last_unit=serial.last_unit,
        quantity_tonnes=serial.quantity,
        vintage_start=vintage_start,
        vintage_end=vintage_end,
        status=_status(retired_on is not None, row.text("Retirement Reason")),
        issued_on=issued_on,
        retired_on=retired_on,
        beneficiary=row.text("Retirement Beneficiary"),
        reason=row.text("Retirement Reason"),
        details=row.text("Retirement Details"),
        labels=labels,
        serial_country=serial.country,
        vintage_total_tonnes=vintage_total,
        monitoring_start=None,
        monitoring_end=None,
        product_type=None,
        article6_authorization=None,
        aeroplane_operator=None,
        source_line=row.line,
    )
    return ParsedRow(project=project, block=block)


def _project(row: Row) -> ImportedProject:
    project_id = identifier(row, "ID")
    country = row.required("Country/Area")
    certifications = items(row.text("Additional Certifications"), ";")
    references = cross_references("; ".join(certifications))
    return ImportedProject(
        programme=Programme.VERRA,
        project_id=project_id,
        name=row.required("Name"),
        country_name=country,
        country_code=country_code(country),
        developer=None,
        project_type=row.text("Project Type"),
        methodology=row.text("Methodology"),
        sustainable_development_goals=items(row.text("Sustainable Development Goals"), ";"),
        additional_certifications=certifications,
        programme_of_activities=None,
        poa_id=None,
        cross_references=tuple(r for r in references if not r.startswith("VCS:")),
        source_line=row.line,
    )


def _serial(row: Row, project_id: str, vintage: tuple[date, date], quantity: int | None) -> SerialRange:
    try:
        serial = parse_vcs_serial(row.required(SERIAL))
    except SerialError as error:
        raise RowError(SERIAL, error.message, error.hint) from None
    if serial.project_id != project_id:
        raise RowError(SERIAL, f"the serial names project {serial.project_id}, the row project {project_id}")
    if (serial.vintage_start, serial.vintage_end) != vintage:
        raise RowError(SERIAL, "the serial's vintage dates differ from Vintage Start and Vintage End")
    if serial.quantity != quantity:
        raise RowError(
            "Quantity Issued",
            f"Quantity Issued is {quantity} but the serial range holds {serial.quantity} units",
            "last unit − first unit + 1 must equal Quantity Issued",
        )
    return serial


def _status(dated: bool, reason: str | None) -> BlockStatus:
    if not dated:
        return BlockStatus.ISSUED
    if reason is not None and "cancel" in reason.lower():
        return BlockStatus.CANCELLED
    return BlockStatus.RETIRED
