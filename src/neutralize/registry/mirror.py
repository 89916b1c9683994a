"""Mirrored credits: home registries' public data imported read-only, the platform's retirements at
home recorded here, and kilogram shares of those retirements allocated to buyers.

A home registry (Verra, Gold Standard, CCER, CDM) retires in whole tonnes and forbids re-selling
its units as new instruments. The platform retires whole tonnes there, records each retirement,
and allocates kilogram shares of it; the shares of one retirement never exceed its tonnes ×
1,000, and a Merkle root over its shares is published with it.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, CursorResult, and_, case, delete, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import AliasedClass

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.core.canonical import canonical_json
from neutralize.core.clock import Clock
from neutralize.core.db import add_once, hold
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError, Problem
from neutralize.core.ids import new_id
from neutralize.registry import journal
from neutralize.registry.domain import KG_PER_TONNE, ProjectStatus, Span, merkle_root
from neutralize.registry.importers import gold_standard, verra
from neutralize.registry.importers.assemble import (
    EarlierBlock,
    clashing_pairs,
    overlaps_with_earlier,
    units_by_status,
)
from neutralize.registry.importers.duplicates import cross_programme_duplicates
from neutralize.registry.importers.records import (
    SUB_BLOCK_PROGRAMMES,
    BlockStatus,
    ImportedBlock,
    ImportedProject,
    ImportResult,
    Programme,
    SerialForm,
    project_code,
)
from neutralize.registry.importers.serials import SerialError, parse_gs_serial, parse_vcs_serial
from neutralize.registry.importers.table import reject
from neutralize.registry.models import (
    HomeHolding,
    HomeRetirement,
    ImportBatch,
    MirroredBlock,
    Organisation,
    Project,
    RetirementShare,
)

Blocks = type[MirroredBlock] | AliasedClass[MirroredBlock]
T = TypeVar("T")
HOME_REGISTRIES = {Programme.VERRA: "Verra", Programme.GOLD_STANDARD: "Gold Standard"}
SERIAL_COLUMNS = {Programme.VERRA: verra.SERIAL, Programme.GOLD_STANDARD: gold_standard.SERIAL}
ISSUED = BlockStatus.ISSUED.value
UNIT_ORDER = (  # an issued block before the sub-blocks starting where it starts
    MirroredBlock.unit_space,
    MirroredBlock.first_unit,
    case((MirroredBlock.status == BlockStatus.ISSUED.value, 0), else_=1),
    MirroredBlock.last_unit.desc(),
    MirroredBlock.id,
)
UNKNOWN = {"name": "unknown", "methodology": "unknown", "project_type": "unknown", "country": "XX"}
IN_LIST = 500  # values in one IN clause
MAX_UNIT = 2**63 - 1  # above every unit number
# Where retirements nest (Gold Standard), what a newer export says of a project replaces what older
# ones said of it kind by kind: an export of issuances leaves the retirements mirrored from another
# export as they are.
KINDS = {
    "issued": (BlockStatus.ISSUED.value,),
    "retired or cancelled": (BlockStatus.RETIRED.value, BlockStatus.CANCELLED.value),
}


class ImportReport(BaseModel):
    """What an import mirrored."""

    batch_id: str
    programme: str
    already_imported: bool
    projects: int
    blocks: int
    kg_by_status: dict[str, int] = Field(
        description="the file's units, each counted once by its innermost block: a retired block "
        "inside an issued one counts as retired, the rest of the issued one as issued"
    )
    replaced_blocks: int = Field(
        description="blocks mirrored from earlier files that this import removed or cut"
    )
    superseded: bool = Field(
        description="some of the file's blocks are no longer mirrored as it gives them: newer imports "
        "replaced them (only an already imported file can say so)"
    )
    duplicates: list[str]


class MirroredBlockPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    programme: str
    serial: str
    first_unit: int
    last_unit: int
    quantity_kg: int
    status: str
    vintage_start: date
    vintage_end: date
    issued_on: date | None
    retired_on: date | None
    beneficiary: str | None
    reason: str | None
    remaining_kg: int | None = Field(
        default=None, description="issued blocks: the kg in no retired or cancelled block inside it"
    )
    part_of: str | None = Field(
        default=None, description="a retired or cancelled block inside an issued one: that block's serial"
    )


class HomeHoldingCreate(BaseModel):
    """Units the platform holds in its own account at a home registry (its stock to sell)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_code: str = Field(max_length=40)
    home_account: str = Field(min_length=1, max_length=200, description="the platform's account there")
    serial: str = Field(min_length=1, max_length=200, description="the home serial range, as published")
    vintage: int = Field(ge=1990, le=2100)
    quantity_tonnes: int = Field(gt=0, le=10**9)


class HomeHoldingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    programme: str
    home_account: str
    serial: str
    vintage: int
    quantity_tonnes: int
    retired_tonnes: int


class HomeRetirementCreate(BaseModel):
    """A retirement the operator made on the home registry's site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holding_id: str | None = Field(default=None, max_length=40, description="the holding it drew on")
    project_code: str = Field(max_length=40)
    vintage: int | None = Field(default=None, ge=1990, le=2100, description="taken from the holding if given")
    home_retirement_id: str = Field(min_length=1, max_length=120)
    serial: str = Field(min_length=1, max_length=200, description="the home serial range, as published")
    quantity_tonnes: int = Field(gt=0, le=10**9)
    retired_on: date
    beneficiary_text: str = Field(min_length=1, max_length=500, description="as entered on the home registry")


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home_retirement_id: str = Field(max_length=40, description="this registry's id of the home retirement")
    kg: int = Field(gt=0, le=10**12)
    beneficiary: str = Field(min_length=1, max_length=300)
    reference: str = Field(min_length=1, max_length=120, description="the order the share belongs to")


class SharePublic(BaseModel):
    id: int
    kg: int
    beneficiary: str
    reference: str


class HomeRetirementPublic(BaseModel):
    id: str
    project_code: str
    programme: str
    vintage: int | None
    home_retirement_id: str
    serial: str
    quantity_tonnes: int
    quantity_kg: int
    allocated_kg: int
    retired_on: date
    beneficiary_text: str
    merkle_root: str
    shares: list[SharePublic]


# --- imports --------------------------------------------------------------------------------------


def parse_export(programme: Programme, text: str) -> ImportResult:
    """Parse a Verra or Gold Standard public export; all rows or nothing (``INVALID_IMPORT``)."""
    if programme is Programme.VERRA:
        return verra.parse_verra_export(text)
    return gold_standard.parse_gold_standard_export(text)


def decode_export(data: bytes, filename: str) -> str:
    """The text of an export file: UTF-8, with or without a byte-order mark, its line ends as they
    are; ``INVALID_IMPORT`` naming the file otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(
            code=ErrorCode.INVALID_IMPORT,
            message=f"the export is not UTF-8 text (byte {error.start} cannot be read)",
            problems=[Problem(code=ErrorCode.INVALID_IMPORT, message="not UTF-8", field=filename)],
        ) from None


def import_export(
    *, session: Session, clock: Clock, actor: Actor, programme: Programme, data: bytes, filename: str
) -> ImportReport:
    """Mirror a public export (the file's bytes): its projects and their blocks. What it says
    replaces what earlier imports said of its projects: kind by kind where retirements nest (Gold
    Standard, ``_replace_kinds``), unit by unit where blocks split (Verra, ``_take_superseded``).

    The same file imported twice changes nothing. A block that clashes with a block it does not
    replace, in the same unit space (in this file or mirrored earlier), is refused before anything is
    written, as is any row that does not parse; the error lists the lines at fault.
    """
    require(actor, Role.ADMIN)
    # One import of a programme at a time: the same file sent twice at once is imported once, and two
    # files naming the same projects replace them one after the other.
    hold(session, f"neutralize.import.{programme.value}")
    digest = hashlib.sha256(data).hexdigest()
    result = parse_export(programme, decode_export(data, filename))
    earlier = session.scalars(
        select(ImportBatch).where(ImportBatch.sha256 == digest, ImportBatch.programme == programme.value)
    ).first()
    if earlier is not None:
        return _report(session, earlier, result, already=True)
    _refuse_clashes(session, result)
    now = clock.now()
    batch = ImportBatch(
        id=new_id("imp", now),
        programme=programme.value,
        filename=filename[:300],
        sha256=digest,
        projects=len(result.projects),
        blocks=len(result.blocks),
        actor=actor.id,
        imported_at=now,
    )
    session.add(batch)
    session.flush()
    projects = {p.project_id: _mirror_project(session, clock, programme, p) for p in result.projects}
    project_ids = {home_id: project.id for home_id, project in projects.items()}
    if programme in SUB_BLOCK_PROGRAMMES:
        replaced = _replace_kinds(session, result, project_ids)
    else:
        replaced = _take_superseded(session, result, project_ids)
    for block in result.blocks:
        session.add(_mirror_block(block, projects[block.project_id].id, batch.id))
    session.flush()
    duplicates = _flag_duplicates(session, result.projects)
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"imports:{programme.value}",
        operation="import",
        payload={
            "batch_id": batch.id,
            "sha256": digest,
            "filename": filename,
            "projects": len(projects),
            "blocks": len(result.blocks),
            "replaced_blocks": replaced,
        },
    )
    return _report(session, batch, result, already=False, replaced=replaced, duplicates=duplicates)


def _registry_organisation(session: Session, clock: Clock, programme: Programme) -> Organisation:
    name = f"{HOME_REGISTRIES[programme]} registry (mirrored public data)"
    organisation = session.scalars(select(Organisation).where(Organisation.name == name)).first()
    if organisation is None:
        now = clock.now()
        organisation = Organisation(id=new_id("org", now), name=name, created_at=now)
        session.add(organisation)
        session.flush()
    return organisation


def _mirror_project(
    session: Session, clock: Clock, programme: Programme, imported: ImportedProject
) -> Project:
    """The mirrored project ``imported`` names, made or brought up to date. A value the file leaves
    empty (a column its layout lacks) keeps what an earlier file said."""
    code = project_code(imported)
    project = session.scalars(select(Project).where(Project.code == code)).first()
    if project is not None and project.native:
        raise DomainError(
            code=ErrorCode.DUPLICATE,
            message=f"the code {code} belongs to a native project of this registry, not to "
            f"{HOME_REGISTRIES[programme]}'s project {imported.project_id}",
        )
    given = {
        "name": imported.name,
        "methodology": imported.methodology,
        "project_type": imported.project_type,
        "country": imported.country_code,
    }
    if project is None:
        owner = _registry_organisation(session, clock, programme)
        project = Project(
            id=new_id("prj", clock.now()),
            code=code,
            standard=programme.value,
            methodology_version="-",
            credit_type="avoidance",
            nature_based=False,
            region=None,
            owner_organisation_id=owner.id,
            labels={},
            buffer_permille=0,
            status=ProjectStatus.REGISTERED.value,
            native=False,
            home_registry=HOME_REGISTRIES[programme],
            home_id=imported.project_id,
            created_at=clock.now(),
            **{name: value or UNKNOWN[name] for name, value in given.items()},
        )
        session.add(project)
    else:
        for name, value in given.items():
            if value:
                setattr(project, name, value)
    labels = dict(project.labels or {})
    if imported.additional_certifications:
        labels["home_labels"] = list(imported.additional_certifications)
    labels["cross_references"] = sorted({*labels.get("cross_references", ()), *imported.cross_references})
    if imported.developer:
        labels["developer"] = imported.developer  # Gold Standard only
    project.labels = labels
    session.flush()
    return project


def _mirror_block(block: ImportedBlock, project_id: str, batch_id: str) -> MirroredBlock:
    return MirroredBlock(
        project_id=project_id,
        batch_id=batch_id,
        programme=block.programme.value,
        serial=block.serial,
        unit_space=block.unit_space,
        first_unit=block.first_unit,
        last_unit=block.last_unit,
        quantity_kg=block.quantity_tonnes * KG_PER_TONNE,
        vintage_start=block.vintage_start,
        vintage_end=block.vintage_end,
        status=block.status.value,
        issued_on=block.issued_on,
        retired_on=block.retired_on,
        beneficiary=block.beneficiary,
        reason=block.reason,
        source_line=block.source_line,
    )


def _refuse_clashes(session: Session, result: ImportResult) -> None:
    """Refuse the file, listing its lines, if a block shares a unit with another project's block
    mirrored earlier. The blocks of the projects the file names are left out: it replaces them."""
    problems = overlaps_with_earlier(
        result.blocks, _earlier_blocks(session, result), SERIAL_COLUMNS[result.programme]
    )
    if problems:
        reject(problems)


def _replace_kinds(session: Session, result: ImportResult, project_ids: dict[str, str]) -> int:
    """Where retirements nest (Gold Standard): the earlier blocks of the file's projects of each kind
    the file lists are removed, so an export of issuances leaves the retirements as they are. The
    number removed."""
    removed = 0
    for statuses in KINDS.values():
        listed = {project_ids[b.project_id] for b in result.blocks if b.status.value in statuses}
        deleted = session.execute(
            delete(MirroredBlock).where(
                MirroredBlock.project_id.in_(sorted(listed)), MirroredBlock.status.in_(statuses)
            )
        )
        removed += cast(CursorResult[Any], deleted).rowcount
    return removed


def _take_superseded(session: Session, result: ImportResult, project_ids: dict[str, str]) -> int:
    """Where a block splits when part of it retires (Verra): every earlier block of the file's projects
    keeps only its units the file does not list, as narrower blocks with the serial as published.
    The number of earlier blocks removed or cut."""
    listed: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for block in result.blocks:
        listed.setdefault((project_ids[block.project_id], block.unit_space), []).append(
            (block.first_unit, block.last_unit)
        )
    ranges = {key: sorted(spans) for key, spans in listed.items()}  # disjoint: the file passed its checks
    ends = {key: [last for _first, last in spans] for key, spans in ranges.items()}
    projects = sorted({project for project, _space in listed})
    cut: list[int] = []
    pieces: list[MirroredBlock] = []
    for chunk in _chunks(projects):
        for old in session.scalars(select(MirroredBlock).where(MirroredBlock.project_id.in_(chunk))):
            key = (old.project_id, old.unit_space)
            if key not in ranges:
                continue
            first = bisect.bisect_left(ends[key], old.first_unit)  # the first range ending at or after it
            last = bisect.bisect_right(ranges[key], (old.last_unit, MAX_UNIT))  # past those starting in it
            covered = ranges[key][first:last]
            if covered:
                cut.append(old.id)
                kept = uncovered(old.first_unit, old.last_unit, covered)
                pieces += [_narrowed(old, piece) for piece in kept]
    for ids in _chunks(cut):
        session.execute(delete(MirroredBlock).where(MirroredBlock.id.in_(ids)))
    session.add_all(pieces)
    return len(cut)


def _chunks(items: list[T]) -> Iterator[list[T]]:
    """``items`` in lists short enough for one ``IN`` clause."""
    for start in range(0, len(items), IN_LIST):
        yield items[start : start + IN_LIST]


def _narrowed(block: MirroredBlock, piece: Span) -> MirroredBlock:
    """``block`` cut down to the units of ``piece``, its serial as published."""
    columns = {c.key: getattr(block, c.key) for c in MirroredBlock.__table__.columns if c.key != "id"}
    columns |= {"first_unit": piece.start, "last_unit": piece.end, "quantity_kg": piece.size * KG_PER_TONNE}
    return MirroredBlock(**columns)


def uncovered(first: int, last: int, covered: Iterable[tuple[int, int]]) -> list[Span]:
    """The units ``first``..``last`` in none of the ``covered`` ranges, as spans in order."""
    pieces = []
    start = first
    for low, high in sorted(covered):
        if low > last:
            break
        if low > start:
            pieces.append(Span(start, low - 1))
        start = max(start, high + 1)
    if start <= last:
        pieces.append(Span(start, last))
    return pieces


def _earlier_blocks(session: Session, result: ImportResult) -> list[EarlierBlock]:
    """The blocks mirrored before in the file's unit spaces that stay beside it: all of them where
    blocks split (Verra: the file supersedes them unit by unit), and those of kinds the file does not
    replace where retirements nest (Gold Standard)."""
    nesting = result.programme in SUB_BLOCK_PROGRAMMES
    replaced = {(project_code(b), _kind(b.status.value)) for b in result.blocks} if nesting else set()
    spaces = sorted({block.unit_space for block in result.blocks})
    found = []
    for chunk in _chunks(spaces):
        stored = _stored_blocks(
            session, MirroredBlock.programme == result.programme.value, MirroredBlock.unit_space.in_(chunk)
        )
        found += [b for b in stored if (b.project_code, _kind(b.status.value)) not in replaced]
    return found


def _stored_blocks(session: Session, *where: ColumnElement[bool]) -> list[EarlierBlock]:
    """The mirrored blocks ``where`` says, as the import rule sees them."""
    rows = session.execute(
        select(
            MirroredBlock.unit_space,
            MirroredBlock.first_unit,
            MirroredBlock.last_unit,
            MirroredBlock.serial,
            Project.code,
            MirroredBlock.status,
        )
        .join(Project, Project.id == MirroredBlock.project_id)
        .where(*where)
    )
    return [
        EarlierBlock(space, first, last, serial, code, BlockStatus(status))
        for space, first, last, serial, code, status in rows
    ]


def _kind(status: str) -> str:
    return next(kind for kind, statuses in KINDS.items() if status in statuses)


def _flag_duplicates(session: Session, imported: Iterable[ImportedProject]) -> list[str]:
    """Projects that appear under two programmes (this file and everything mirrored before).

    Each project's ``possible_duplicate_of`` label lists every project it was matched with, in
    this import or an earlier one."""
    known = [*imported, *_mirrored_projects(session)]
    flagged = []
    matches: dict[str, set[str]] = {}
    for first, second, reason in cross_programme_duplicates(known):
        first_code, second_code = project_code(first), project_code(second)
        flagged.append(f"{first_code} and {second_code}: {reason}")
        matches.setdefault(first_code, set()).add(second_code)
        matches.setdefault(second_code, set()).add(first_code)
    for code, others in matches.items():
        project = session.scalars(select(Project).where(Project.code == code)).first()
        if project is not None:
            before = project.labels.get("possible_duplicate_of") or []
            before = [before] if isinstance(before, str) else before  # one code, as first stored
            project.labels = {**project.labels, "possible_duplicate_of": sorted({*before, *others})}
    return sorted(set(flagged))


def _mirrored_projects(session: Session) -> list[ImportedProject]:
    projects = []
    for project in session.scalars(select(Project).where(Project.native.is_(False))):
        programme = Programme(project.standard) if project.standard in ("VCS", "GS") else None
        if programme is None or project.home_id is None:
            continue
        projects.append(
            ImportedProject(
                programme=programme,
                project_id=project.home_id,
                name=project.name,
                country_name=project.country,
                country_code=project.country,
                developer=project.labels.get("developer"),
                project_type=project.project_type,
                methodology=project.methodology,
                sustainable_development_goals=(),
                additional_certifications=(),
                programme_of_activities=None,
                poa_id=None,
                cross_references=tuple(project.labels.get("cross_references", ())),
                source_line=0,
            )
        )
    return projects


def _report(
    session: Session,
    batch: ImportBatch,
    result: ImportResult,
    *,
    already: bool,
    replaced: int = 0,
    duplicates: list[str] | None = None,
) -> ImportReport:
    kept = select(
        MirroredBlock.unit_space, MirroredBlock.first_unit, MirroredBlock.last_unit, MirroredBlock.status
    )
    mirrored = {tuple(row) for row in session.execute(kept.where(MirroredBlock.batch_id == batch.id))}
    as_filed = {(b.unit_space, b.first_unit, b.last_unit, b.status.value) for b in result.blocks}
    return ImportReport(
        batch_id=batch.id,
        programme=batch.programme,
        already_imported=already,
        projects=batch.projects,
        blocks=batch.blocks,
        kg_by_status={
            status: tonnes * KG_PER_TONNE for status, tonnes in units_by_status(result.blocks).items()
        },
        replaced_blocks=replaced,
        superseded=not as_filed <= mirrored,
        duplicates=duplicates or [],
    )


def find_home_serial(
    *, session: Session, text: str, page: int = 1, page_size: int = 50
) -> list[MirroredBlockPublic]:
    """Mirrored blocks whose published serial contains ``text`` (at least 6 characters, taken
    literally, in any case), in unit order, a page at a time: each issued one with the kg in no
    sub-block of it, each sub-block with the serial of the issued block around it."""
    needle = text.strip()
    if len(needle) < 6:
        raise DomainError(code=ErrorCode.INVALID_SERIAL, message="give at least 6 characters of a serial")
    found = session.scalars(
        select(MirroredBlock)
        .where(func.upper(MirroredBlock.serial).contains(needle.upper(), autoescape=True))
        .order_by(MirroredBlock.programme, *UNIT_ORDER)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return _public(session, found)


def mirrored_blocks_of(
    *, session: Session, project_code: str, status: str | None = None, page: int = 1, page_size: int = 200
) -> list[MirroredBlockPublic]:
    """A mirrored project's blocks as its home registry published them, in unit order, optionally
    of one status (issued, retired or cancelled)."""
    project = _public_mirrored_project(session, project_code)
    query = select(MirroredBlock).where(MirroredBlock.project_id == project.id)
    if status is not None:
        query = query.where(MirroredBlock.status == status)
    rows = session.scalars(query.order_by(*UNIT_ORDER).offset((page - 1) * page_size).limit(page_size))
    return _public(session, rows)


def sub_blocks(blocks: Iterable[MirroredBlock]) -> dict[int, list[MirroredBlock]]:
    """Of ``blocks``, each issued block's retired and cancelled blocks inside it, in unit order, by
    the issued block's id (issued blocks without any are left out)."""
    inside: dict[int, list[MirroredBlock]] = {}
    outer: MirroredBlock | None = None
    for block in sorted(blocks, key=_unit_order):
        if block.status == ISSUED:
            outer = block
        elif outer is not None and _inside(block, outer):
            inside.setdefault(outer.id, []).append(block)
    return inside


def remainder(block: MirroredBlock, inside: Sequence[MirroredBlock]) -> list[Span]:
    """The units of ``block`` in none of ``inside`` (its sub-blocks), as spans in order."""
    return uncovered(block.first_unit, block.last_unit, [(sub.first_unit, sub.last_unit) for sub in inside])


def _inside(block: MirroredBlock, outer: MirroredBlock) -> bool:
    return (
        (block.programme, block.unit_space, block.project_id)
        == (outer.programme, outer.unit_space, outer.project_id)
        and outer.first_unit <= block.first_unit
        and block.last_unit <= outer.last_unit
    )


def _unit_order(block: MirroredBlock) -> tuple[str, str, int, bool, int]:
    return (block.programme, block.unit_space, block.first_unit, block.status != ISSUED, -block.last_unit)


def _same_units(table: Blocks, block: MirroredBlock | Blocks) -> tuple[ColumnElement[bool], ...]:
    """``table``'s blocks of ``block``'s project sharing a unit with it (``block`` a row or, in a
    join, another alias of the table)."""
    return (
        table.programme == block.programme,
        table.unit_space == block.unit_space,
        table.project_id == block.project_id,
        table.first_unit <= block.last_unit,
        table.last_unit >= block.first_unit,
    )


def _public(session: Session, blocks: Iterable[MirroredBlock]) -> list[MirroredBlockPublic]:
    """``blocks`` in unit order, each issued one with the kg in no sub-block of it and each sub-block
    with the serial of the issued block around it, whatever else is shown."""
    ordered = sorted(blocks, key=_unit_order)
    settled = _settled_inside(session, [block.id for block in ordered if block.status == ISSUED])
    around = _issued_around(session, [block.id for block in ordered if block.status != ISSUED])
    shown = []
    for block in ordered:
        public = MirroredBlockPublic.model_validate(block)
        if block.status == ISSUED:
            public.remaining_kg = block.quantity_kg - settled.get(block.id, 0)
        public.part_of = around.get(block.id)
        shown.append(public)
    return shown


def _issued_around(session: Session, ids: list[int]) -> dict[int, str]:
    """The serial of the issued block each of the retired or cancelled blocks ``ids`` lies in."""
    inner, outer = aliased(MirroredBlock), aliased(MirroredBlock)
    rows = session.execute(
        select(inner.id, outer.serial)
        .join(
            outer,
            and_(
                *_same_units(outer, inner),
                outer.status == ISSUED,
                outer.first_unit <= inner.first_unit,
                outer.last_unit >= inner.last_unit,
            ),
        )
        .where(inner.id.in_(ids))
    )
    return {int(block_id): str(serial) for block_id, serial in rows}


def _settled_inside(session: Session, ids: list[int]) -> dict[int, int]:
    """The kg of the retired and cancelled blocks inside each of the issued blocks ``ids``."""
    outer, inner = aliased(MirroredBlock), aliased(MirroredBlock)
    rows = session.execute(
        select(outer.id, func.sum(inner.quantity_kg))
        .join(
            inner,
            and_(
                *_same_units(inner, outer),
                inner.status != ISSUED,
                inner.first_unit >= outer.first_unit,
                inner.last_unit <= outer.last_unit,
            ),
        )
        .where(outer.id.in_(ids))
        .group_by(outer.id)
    )
    return {block_id: int(kg) for block_id, kg in rows}


# --- home retirements and shares ------------------------------------------------------------------


def record_holding(
    *, session: Session, clock: Clock, actor: Actor, cmd: HomeHoldingCreate
) -> HomeHoldingPublic:
    """Record units the platform holds at a home registry; retirements there draw them down."""
    require(actor, Role.ADMIN)
    project = _mirrored_project(session, cmd.project_code)
    _home_serial(project, cmd.serial, cmd.quantity_tonnes)

    def taken() -> bool:
        query = select(HomeHolding.id).where(
            HomeHolding.programme == project.standard, HomeHolding.serial == cmd.serial
        )
        return session.scalars(query).first() is not None

    recorded = DomainError(code=ErrorCode.DUPLICATE, message=f"the holding {cmd.serial} is recorded")
    if taken():
        raise recorded
    now = clock.now()
    row = HomeHolding(
        id=new_id("hold", now),
        project_id=project.id,
        programme=project.standard,
        home_account=cmd.home_account,
        serial=cmd.serial,
        vintage=cmd.vintage,
        quantity_tonnes=cmd.quantity_tonnes,
        retired_tonnes=0,
        actor=actor.id,
        recorded_at=now,
    )
    add_once(session, [row], taken=taken, refusal=recorded)  # the same holding sent twice at once
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="record_holding",
        payload={"id": row.id, **cmd.model_dump(mode="json")},
    )
    return HomeHoldingPublic.model_validate(row)


def holdings_at_home(*, session: Session, project_code: str | None = None) -> list[HomeHoldingPublic]:
    """The platform's stock at home registries, with what is still unretired."""
    query = select(HomeHolding).order_by(HomeHolding.recorded_at, HomeHolding.id)
    if project_code is not None:
        query = query.where(HomeHolding.project_id == _mirrored_project(session, project_code).id)
    return [HomeHoldingPublic.model_validate(row) for row in session.scalars(query)]


HOME_SERIALS = {Programme.VERRA.value: parse_vcs_serial, Programme.GOLD_STANDARD.value: parse_gs_serial}
HOME_FORMS = (SerialForm.VCS_13, SerialForm.VCS_12, SerialForm.GS)  # the forms that name the home project


def _home_serial(project: Project, serial: str, tonnes: int) -> None:
    """``serial`` as the home registry publishes it: in its grammar, naming ``project`` (Kyoto/CDM
    ranges name the CDM project instead), and numbering ``tonnes`` units."""
    parse = HOME_SERIALS.get(project.standard)
    if parse is None:
        return
    try:
        read = parse(serial)
    except SerialError as error:
        raise DomainError(
            code=ErrorCode.INVALID_SERIAL,
            message=f"{serial!r}: {error.message}",
            problems=[Problem(code=ErrorCode.INVALID_SERIAL, message=error.message, field="serial",
                              hint=error.hint)],
        ) from None  # fmt: skip
    if read.form in HOME_FORMS and read.project_id != project.home_id:
        raise DomainError(
            code=ErrorCode.INVALID_SERIAL,
            message=f"the serial names project {read.project_id}, not {project.code}",
        )
    if read.quantity != tonnes:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"the serial numbers {read.quantity} t, not the {tonnes} t given",
            problems=[Problem(code=ErrorCode.INVALID_REQUEST, message="last unit − first unit + 1 must "
                              "equal quantity_tonnes", field="quantity_tonnes")],
        )  # fmt: skip


def _public_mirrored_project(session: Session, code: str) -> Project:
    """The mirrored project ``code`` for a public read: any other code, a native project's (which may
    be a draft) or one that does not exist, answers the same ``NOT_FOUND``."""
    project = session.scalars(select(Project).where(Project.code == code, Project.native.is_(False))).first()
    if project is None:
        raise NotFoundError(f"no mirrored project {code!r}")
    return project


def _mirrored_project(session: Session, code: str) -> Project:
    project = session.scalars(select(Project).where(Project.code == code)).first()
    if project is None:
        raise NotFoundError(f"no project {code!r}")
    if project.native:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"{code} is a native project: its credits live and retire in this registry, "
            "not at a home registry",
        )
    return project


def _draw(session: Session, holding_id: str, project: Project, tonnes: int) -> int:
    """Take ``tonnes`` of a holding for a home retirement; never more than is unretired. Returns the
    holding's vintage."""
    holding = session.scalars(
        select(HomeHolding).where(HomeHolding.id == holding_id).with_for_update()
    ).first()
    if holding is None or holding.project_id != project.id:
        raise NotFoundError(f"no holding {holding_id!r} of {project.code}")
    if holding.retired_tonnes + tonnes > holding.quantity_tonnes:
        unretired = holding.quantity_tonnes - holding.retired_tonnes
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS, message=f"{unretired} t of this holding are unretired"
        )
    holding.retired_tonnes += tonnes
    return holding.vintage


def record_retirement(
    *, session: Session, clock: Clock, actor: Actor, cmd: HomeRetirementCreate
) -> HomeRetirementPublic:
    """Record a retirement made on the home registry, so kilogram shares of it can be allocated."""
    require(actor, Role.ADMIN)
    project = _mirrored_project(session, cmd.project_code)

    def taken() -> bool:
        query = select(HomeRetirement.id).where(
            HomeRetirement.programme == project.standard,
            HomeRetirement.home_retirement_id == cmd.home_retirement_id,
        )
        return session.scalars(query).first() is not None

    recorded = DomainError(
        code=ErrorCode.DUPLICATE, message=f"home retirement {cmd.home_retirement_id} is recorded"
    )
    if taken():
        raise recorded
    _home_serial(project, cmd.serial, cmd.quantity_tonnes)
    if cmd.retired_on > clock.now().date():
        raise DomainError(
            code=ErrorCode.OUT_OF_RANGE,
            message=f"a retirement made on the home registry on {cmd.retired_on} is yet to be made",
            problems=[
                Problem(code=ErrorCode.OUT_OF_RANGE, message="a day that has not come", field="retired_on")
            ],
        )
    vintage = _draw(session, cmd.holding_id, project, cmd.quantity_tonnes) if cmd.holding_id else cmd.vintage
    if vintage is None:
        raise DomainError(code=ErrorCode.MISSING_FIELD, message="give the holding drawn on, or the vintage")
    if cmd.vintage is not None and cmd.vintage != vintage:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST, message=f"the holding is of vintage {vintage}, not {cmd.vintage}"
        )
    now = clock.now()
    row = HomeRetirement(
        id=new_id("hret", now),
        project_id=project.id,
        holding_id=cmd.holding_id,
        programme=project.standard,
        vintage=vintage,
        home_retirement_id=cmd.home_retirement_id,
        serial=cmd.serial,
        quantity_tonnes=cmd.quantity_tonnes,
        quantity_kg=cmd.quantity_tonnes * KG_PER_TONNE,
        allocated_kg=0,
        retired_on=cmd.retired_on,
        beneficiary_text=cmd.beneficiary_text,
        merkle_root=merkle_root([]),
        actor=actor.id,
        recorded_at=now,
    )
    add_once(session, [row], taken=taken, refusal=recorded)  # the same form sent twice at once
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="record_retirement",
        payload={"id": row.id, **cmd.model_dump(mode="json")},
    )
    return home_retirement_public(session=session, retirement_id=row.id)


def allocate_share(*, session: Session, clock: Clock, actor: Actor, cmd: ShareCreate) -> HomeRetirementPublic:
    """Allocate ``kg`` of a recorded home retirement to a buyer; never more than it holds."""
    require(actor, Role.ADMIN)
    locked = select(HomeRetirement).where(HomeRetirement.id == cmd.home_retirement_id).with_for_update()
    # populate_existing: a row the session already holds (the market reads them first) is read again
    row = session.scalars(locked.execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFoundError(f"no home retirement {cmd.home_retirement_id!r}")
    shared = select(RetirementShare.id).where(
        RetirementShare.home_retirement_id == row.id, RetirementShare.reference == cmd.reference
    )
    if session.scalars(shared).first() is not None:  # the retirement's row lock orders allocations
        raise DomainError(
            code=ErrorCode.DUPLICATE, message=f"this retirement already has a share for {cmd.reference!r}"
        )
    if row.allocated_kg + cmd.kg > row.quantity_kg:
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS,
            message=f"{row.quantity_kg - row.allocated_kg} kg of this retirement are unallocated",
        )
    session.add(
        RetirementShare(
            home_retirement_id=row.id,
            kg=cmd.kg,
            beneficiary=cmd.beneficiary,
            reference=cmd.reference,
            allocated_at=clock.now(),
        )
    )
    row.allocated_kg += cmd.kg
    session.flush()
    row.merkle_root = merkle_root(_share_leaves(session, row.id))
    project = session.get(Project, row.project_id)
    assert project is not None
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="allocate_share",
        payload={**cmd.model_dump(mode="json"), "merkle_root": row.merkle_root},
    )
    return home_retirement_public(session=session, retirement_id=row.id)


def _shares(session: Session, retirement_id: str) -> list[RetirementShare]:
    query = select(RetirementShare).where(RetirementShare.home_retirement_id == retirement_id)
    return list(session.scalars(query.order_by(RetirementShare.id)))


def _share_leaves(session: Session, retirement_id: str) -> list[bytes]:
    return [
        canonical_json({"id": s.id, "kg": s.kg, "beneficiary": s.beneficiary, "reference": s.reference})
        for s in _shares(session, retirement_id)
    ]


def home_retirement_public(*, session: Session, retirement_id: str) -> HomeRetirementPublic:
    row = session.get(HomeRetirement, retirement_id)
    if row is None:
        raise NotFoundError(f"no home retirement {retirement_id!r}")
    project = session.get(Project, row.project_id)
    assert project is not None
    shares = [
        SharePublic(id=s.id, kg=s.kg, beneficiary=s.beneficiary, reference=s.reference)
        for s in _shares(session, row.id)
    ]
    return HomeRetirementPublic(
        id=row.id,
        project_code=project.code,
        programme=row.programme,
        vintage=row.vintage,
        home_retirement_id=row.home_retirement_id,
        serial=row.serial,
        quantity_tonnes=row.quantity_tonnes,
        quantity_kg=row.quantity_kg,
        allocated_kg=row.allocated_kg,
        retired_on=row.retired_on,
        beneficiary_text=row.beneficiary_text,
        merkle_root=row.merkle_root,
        shares=shares,
    )


def block_problems(*, session: Session) -> list[str]:
    """Mirrored blocks that share units against the import rule (``assemble.py``), by programme."""
    problems = []
    for programme in Programme:
        blocks = _stored_blocks(session, MirroredBlock.programme == programme.value)
        problems += [
            f"mirrored {a.status.value} block {a.serial} ({a.first_unit}-{a.last_unit}) of {a.project_code} "
            f"shares units with {b.status.value} block {b.serial} ({b.first_unit}-{b.last_unit})"
            for a, b in clashing_pairs(programme, blocks)
        ]
    return problems


def share_problems(*, session: Session) -> list[str]:
    """Home retirements whose shares exceed them or whose published root no longer matches, and
    holdings whose retired tonnes are not the retirements drawn on them."""
    problems = []
    drawn: dict[str, int] = {}
    for holding_id, tonnes in session.execute(
        select(HomeRetirement.holding_id, HomeRetirement.quantity_tonnes).where(
            HomeRetirement.holding_id.is_not(None)
        )
    ).all():
        drawn[str(holding_id)] = drawn.get(str(holding_id), 0) + tonnes
    for holding in session.scalars(select(HomeHolding)):
        if drawn.get(holding.id, 0) != holding.retired_tonnes:
            problems.append(
                f"home holding {holding.serial}: {holding.retired_tonnes} t retired, "
                f"retirements drew {drawn.get(holding.id, 0)} t"
            )
    for row in session.scalars(select(HomeRetirement)):
        total = sum(s.kg for s in _shares(session, row.id))
        if total != row.allocated_kg or total > row.quantity_kg:
            problems.append(
                f"home retirement {row.home_retirement_id}: shares {total} kg of {row.quantity_kg} kg"
            )
        if merkle_root(_share_leaves(session, row.id)) != row.merkle_root:
            problems.append(
                f"home retirement {row.home_retirement_id}: its shares do not match the published root"
            )
    return problems


def home_retirements_of(
    *, session: Session, project_code: str, page: int = 1, page_size: int = 50
) -> list[HomeRetirementPublic]:
    """The retirements the platform recorded at a project's home registry, newest first."""
    project = _public_mirrored_project(session, project_code)
    ids = session.scalars(
        select(HomeRetirement.id)
        .where(HomeRetirement.project_id == project.id)
        .order_by(HomeRetirement.retired_on.desc(), HomeRetirement.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return [home_retirement_public(session=session, retirement_id=i) for i in ids]


def retirements_with_room(*, session: Session, project_code: str, vintage: int) -> list[HomeRetirementPublic]:
    """Recorded home retirements of a project vintage with kilograms still unallocated, oldest first."""
    project = _mirrored_project(session, project_code)
    ids = session.scalars(
        select(HomeRetirement.id)
        .where(
            HomeRetirement.project_id == project.id,
            HomeRetirement.vintage == vintage,
            HomeRetirement.allocated_kg < HomeRetirement.quantity_kg,
        )
        .order_by(HomeRetirement.recorded_at, HomeRetirement.id)
    )
    return [home_retirement_public(session=session, retirement_id=i) for i in ids]


def unretired_stock_kg(*, session: Session, project_code: str, vintage: int) -> int:
    """Kilograms the platform holds at home for a project vintage and has not retired there."""
    project = _mirrored_project(session, project_code)
    tonnes = session.scalar(
        select(func.coalesce(func.sum(HomeHolding.quantity_tonnes - HomeHolding.retired_tonnes), 0)).where(
            HomeHolding.project_id == project.id, HomeHolding.vintage == vintage
        )
    )
    return int(tonnes or 0) * KG_PER_TONNE
