"""Reading mirrored blocks: by project or by part of their serial, each issued block with the
kilograms in none of its sub-blocks and each sub-block with the issued block it lies in; the same
rule the importer keeps, checked over what is stored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import AliasedClass

from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.registry.domain import Span
from neutralize.registry.importers.assemble import EarlierBlock, clashing_pairs
from neutralize.registry.importers.records import BlockStatus, Programme
from neutralize.registry.mirror.schemas import MirroredBlockPublic
from neutralize.registry.models import MirroredBlock, Project

Blocks = type[MirroredBlock] | AliasedClass[MirroredBlock]
T = TypeVar("T")
ISSUED = BlockStatus.ISSUED.value
UNIT_ORDER = (  # an issued block before the sub-blocks starting where it starts
    MirroredBlock.unit_space,
    MirroredBlock.first_unit,
    case((MirroredBlock.status == BlockStatus.ISSUED.value, 0), else_=1),
    MirroredBlock.last_unit.desc(),
    MirroredBlock.id,
)
IN_LIST = 500  # values in one IN clause


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
    project = public_mirrored_project(session, project_code)
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


def block_problems(*, session: Session) -> list[str]:
    """Mirrored blocks that share units against the import rule (``assemble.py``), by programme."""
    problems = []
    for programme in Programme:
        blocks = stored_blocks(session, MirroredBlock.programme == programme.value)
        problems += [
            f"mirrored {a.status.value} block {a.serial} ({a.first_unit}-{a.last_unit}) of {a.project_code} "
            f"shares units with {b.status.value} block {b.serial} ({b.first_unit}-{b.last_unit})"
            for a, b in clashing_pairs(programme, blocks)
        ]
    return problems


def stored_blocks(session: Session, *where: ColumnElement[bool]) -> list[EarlierBlock]:
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


def in_chunks(items: list[T]) -> Iterator[list[T]]:
    """``items`` in lists short enough for one ``IN`` clause."""
    for start in range(0, len(items), IN_LIST):
        yield items[start : start + IN_LIST]


def public_mirrored_project(session: Session, code: str) -> Project:
    """The mirrored project ``code`` for a public read: any other code, a native project's (which may
    be a draft) or one that does not exist, answers the same ``NOT_FOUND``."""
    project = session.scalars(select(Project).where(Project.code == code, Project.native.is_(False))).first()
    if project is None:
        raise NotFoundError(f"no mirrored project {code!r}")
    return project
