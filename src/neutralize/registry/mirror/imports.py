"""Mirroring a public export: parse it, refuse it whole if a row or a block breaks the rules, then
replace what earlier exports said of its projects (kind by kind for Gold Standard, unit by unit for
Verra) and flag projects that appear under two programmes."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.core.clock import Clock
from neutralize.core.db import hold
from neutralize.core.errors import DomainError, ErrorCode, Problem
from neutralize.core.ids import new_id
from neutralize.registry import journal
from neutralize.registry.domain import KG_PER_TONNE, ProjectStatus, Span
from neutralize.registry.importers import gold_standard, verra
from neutralize.registry.importers.assemble import EarlierBlock, overlaps_with_earlier, units_by_status
from neutralize.registry.importers.duplicates import cross_programme_duplicates
from neutralize.registry.importers.records import (
    SUB_BLOCK_PROGRAMMES,
    BlockStatus,
    ImportedBlock,
    ImportedProject,
    ImportResult,
    Programme,
    project_code,
)
from neutralize.registry.importers.table import reject
from neutralize.registry.mirror.blocks import in_chunks, stored_blocks, uncovered
from neutralize.registry.mirror.schemas import ImportReport
from neutralize.registry.models import ImportBatch, MirroredBlock, Organisation, Project

HOME_REGISTRIES = {Programme.VERRA: "Verra", Programme.GOLD_STANDARD: "Gold Standard"}
SERIAL_COLUMNS = {Programme.VERRA: verra.SERIAL, Programme.GOLD_STANDARD: gold_standard.SERIAL}
UNKNOWN = {"name": "unknown", "methodology": "unknown", "project_type": "unknown", "country": "XX"}
MAX_UNIT = 2**63 - 1  # above every unit number
# Where retirements nest (Gold Standard), what a newer export says of a project replaces what older
# ones said of it kind by kind: an export of issuances leaves the retirements mirrored from another
# export as they are.
KINDS = {
    "issued": (BlockStatus.ISSUED.value,),
    "retired or cancelled": (BlockStatus.RETIRED.value, BlockStatus.CANCELLED.value),
}


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
    for chunk in in_chunks(projects):
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
    for ids in in_chunks(cut):
        session.execute(delete(MirroredBlock).where(MirroredBlock.id.in_(ids)))
    session.add_all(pieces)
    return len(cut)


def _narrowed(block: MirroredBlock, piece: Span) -> MirroredBlock:
    """``block`` cut down to the units of ``piece``, its serial as published."""
    columns = {c.key: getattr(block, c.key) for c in MirroredBlock.__table__.columns if c.key != "id"}
    columns |= {"first_unit": piece.start, "last_unit": piece.end, "quantity_kg": piece.size * KG_PER_TONNE}
    return MirroredBlock(**columns)


def _earlier_blocks(session: Session, result: ImportResult) -> list[EarlierBlock]:
    """The blocks mirrored before in the file's unit spaces that stay beside it: all of them where
    blocks split (Verra: the file supersedes them unit by unit), and those of kinds the file does not
    replace where retirements nest (Gold Standard)."""
    nesting = result.programme in SUB_BLOCK_PROGRAMMES
    replaced = {(project_code(b), _kind(b.status.value)) for b in result.blocks} if nesting else set()
    spaces = sorted({block.unit_space for block in result.blocks})
    found = []
    for chunk in in_chunks(spaces):
        stored = stored_blocks(
            session, MirroredBlock.programme == result.programme.value, MirroredBlock.unit_space.in_(chunk)
        )
        found += [b for b in stored if (b.project_code, _kind(b.status.value)) not in replaced]
    return found


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
