"""What an import of a public registry export yields: projects and serial blocks, exactly as published.

Quantities are whole tonnes, as the home registries count them; the caller converts to kilograms
(× 1,000) when it mirrors a block. Text is kept as published (trimmed), so a stored record can be
traced back to the export line it came from (``source_line``, the header being line 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Programme(StrEnum):
    """The home programme of an imported record; values match the registry's ``standard`` codes."""

    VERRA = "VCS"
    GOLD_STANDARD = "GS"


# Programmes that publish a retirement as a sub-block of the issued block it came from.
SUB_BLOCK_PROGRAMMES = frozenset({Programme.GOLD_STANDARD})


class BlockStatus(StrEnum):
    """The state of a block on its home registry when the export was taken."""

    ISSUED = "issued"
    RETIRED = "retired"
    CANCELLED = "cancelled"


class SerialForm(StrEnum):
    """Which published serial grammar a block's serial matched (see ``serials.py``)."""

    VCS_13 = "vcs-13"  # current Verra form, 13 fields
    VCS_12 = "vcs-12"  # older Verra form without the "VCS" programme field, 12 fields
    GS = "gs"  # Gold Standard form, 9 fields
    CDM_BLOCK = "cdm-block"  # Kyoto/CDM unit block with both ends in one string
    CDM_PAIR = "cdm-pair"  # Kyoto/CDM first and last unit identifiers, "<first> - <last>"


@dataclass(frozen=True, slots=True)
class ImportedProject:
    """A project as a public export describes it; one per (programme, project id) in a file."""

    programme: Programme
    project_id: str  # the home registry's id, digits only: Verra "ID", Gold Standard "GSID"
    name: str
    country_name: str  # as published
    country_code: str | None  # ISO 3166-1 alpha-2 when the published name maps to one
    developer: str | None  # Gold Standard "Project Developer"; the Verra export has no such column
    project_type: str | None
    methodology: str | None  # as published, e.g. "VMR0006; VM0050"
    sustainable_development_goals: tuple[str, ...]  # Verra, e.g. ("01: No Poverty", ...)
    additional_certifications: tuple[str, ...]  # Verra, union over the project's rows
    programme_of_activities: str | None  # Gold Standard, e.g. "VPA" or "Standalone"
    poa_id: str | None  # Gold Standard "POA GSID", digits only
    cross_references: tuple[str, ...]  # other programmes' ids named in the export, e.g. ("CDM:1234",)
    source_line: int  # the first line naming the project


@dataclass(frozen=True, slots=True)
class ImportedBlock:
    """One serial block of one row: units ``first_unit``..``last_unit`` (inclusive) of ``unit_space``.

    Unit numbers are unique only within a ``unit_space``: Verra numbers all units of one registry in
    one sequence, Gold Standard numbers each issuance batch from 1, Kyoto units are numbered per
    originating party and unit type. Two blocks in the same space share no unit, with one exception:
    a retired or cancelled block may lie inside an issued block of its project, as Gold Standard
    publishes its retirements (see ``assemble.py``).
    """

    programme: Programme
    project_id: str
    serial: str  # as published
    serial_form: SerialForm
    unit_space: str
    first_unit: int
    last_unit: int
    quantity_tonnes: int  # == last_unit - first_unit + 1, checked
    vintage_start: date
    vintage_end: date
    status: BlockStatus
    issued_on: date | None
    retired_on: date | None  # retirement or cancellation date
    beneficiary: str | None  # Verra "Retirement Beneficiary"; Gold Standard "Using Entity"
    reason: str | None  # Verra "Retirement Reason"; Gold Standard "Use Case"
    details: str | None  # Verra "Retirement Details"; Gold Standard "Note"
    labels: tuple[str, ...]  # Verra "Additional Certifications"; Gold Standard "Label"
    serial_country: str | None  # the country field of the serial; may differ from the project's
    vintage_total_tonnes: int | None  # Verra "Total Vintage Quantity"
    monitoring_start: date | None  # Gold Standard "Monitoring Period Start"
    monitoring_end: date | None
    product_type: str | None  # Gold Standard, e.g. "VER"
    article6_authorization: str | None  # Gold Standard "Article Six Authorization", as published
    aeroplane_operator: str | None  # Gold Standard "Aeroplane Operator Name" (CORSIA use)
    source_line: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Everything one export file holds, in file order; returned only when every row parsed."""

    programme: Programme
    projects: tuple[ImportedProject, ...]
    blocks: tuple[ImportedBlock, ...]


def project_code(record: ImportedProject | ImportedBlock) -> str:
    """The code of the project ``record`` names, as mirrored here: ``VCS-<id>`` or ``GS-<id>``."""
    return f"{record.programme.value}-{record.project_id}"
