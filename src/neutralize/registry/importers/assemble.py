"""Checks across rows, then the all-or-nothing result: one project per id, no unit counted twice.

Two blocks of one unit space share no unit, except that a Gold Standard retired or cancelled block may
lie inside an issued block of its project: Gold Standard publishes an issuance whole and its
retirements as sub-blocks of it (``SUB_BLOCK_PROGRAMMES``). Verra splits a block when part of it is
retired, so there a retired block inside an active one is a fault of the file. The same rule holds
across files: ``overlaps_with_earlier`` reports, in the same shape, every block of a file that
clashes with a block mirrored from an earlier one.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from neutralize.core.errors import Problem
from neutralize.registry.importers.records import (
    SUB_BLOCK_PROGRAMMES,
    BlockStatus,
    ImportedBlock,
    ImportedProject,
    ImportResult,
    Programme,
    project_code,
)
from neutralize.registry.importers.table import problem, reject

NESTING_RULE = (
    "a retired or cancelled block may lie inside an issued block of its project; "
    "no other blocks may share a unit"
)
SPLIT_RULE = "no two blocks may share a unit"


def _rule(programme: Programme) -> str:
    return NESTING_RULE if programme in SUB_BLOCK_PROGRAMMES else SPLIT_RULE


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One row that parsed on its own: the project it names and its block."""

    project: ImportedProject
    block: ImportedBlock


def assemble(
    programme: Programme,
    parsed: Sequence[ParsedRow],
    problems: Sequence[Problem],
    *,
    identity: Mapping[str, str],
    serial_column: str,
) -> ImportResult:
    """The file's result if no row has a problem; otherwise ``DomainError`` listing every bad row.

    ``identity`` maps the project attributes that must agree on every row of a project to the
    column they come from. At most one problem is reported per row: the first check it fails.
    """
    found = list(problems)
    consistent, conflicts = _consistent_projects(parsed, identity)
    found += conflicts
    found += _overlaps(programme, [row.block for row in consistent], serial_column)
    if found:
        reject(found)
    projects: dict[str, ImportedProject] = {}
    for row in consistent:
        earlier = projects.get(row.project.project_id)
        projects[row.project.project_id] = row.project if earlier is None else _merged(earlier, row.project)
    return ImportResult(
        programme=programme,
        projects=tuple(projects.values()),
        blocks=tuple(row.block for row in consistent),
    )


def _consistent_projects(
    parsed: Sequence[ParsedRow], identity: Mapping[str, str]
) -> tuple[list[ParsedRow], list[Problem]]:
    first: dict[str, ParsedRow] = {}
    kept: list[ParsedRow] = []
    conflicts: list[Problem] = []
    for row in parsed:
        earlier = first.setdefault(row.project.project_id, row)
        clash = next(
            (attr for attr in identity if getattr(row.project, attr) != getattr(earlier.project, attr)), None
        )
        if clash is None:
            kept.append(row)
            continue
        conflicts.append(
            problem(
                row.block.source_line,
                identity[clash],
                f"project {row.project.project_id} has {identity[clash]} {getattr(row.project, clash)!r} "
                f"here but {getattr(earlier.project, clash)!r} on line {earlier.block.source_line}",
                "every row of one project must describe it the same way",
            )
        )
    return kept, conflicts


def _overlaps(programme: Programme, blocks: Sequence[ImportedBlock], serial_column: str) -> list[Problem]:
    """A problem on the later line of every pair of blocks that may not share their units."""
    nesting = programme in SUB_BLOCK_PROGRAMMES
    spaces = {space: _Space(members, nesting) for space, members in _by_space(blocks).items()}
    found: list[Problem] = []
    for block in blocks:
        clashes = spaces[block.unit_space].clashes(block)
        other = next((o for o in clashes if o.source_line < block.source_line), None)
        if other is not None:
            found.append(
                problem(
                    block.source_line,
                    serial_column,
                    f"{_relation(block, other)} on line {other.source_line}",
                    _rule(programme),
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class EarlierBlock:
    """A block mirrored from an earlier file: its units, status and the project (by code) holding them."""

    unit_space: str
    first_unit: int
    last_unit: int
    serial: str
    project_code: str
    status: BlockStatus


def overlaps_with_earlier(
    blocks: Sequence[ImportedBlock], earlier: Iterable[EarlierBlock], serial_column: str
) -> list[Problem]:
    """A problem on the line of every block that may not share its units with a block of ``earlier``.

    ``earlier`` holds the blocks kept after the import, so the caller leaves out those the file
    replaces.
    """
    if not blocks:
        return []
    programme = blocks[0].programme
    nesting = programme in SUB_BLOCK_PROGRAMMES
    spaces = {space: _Space(members, nesting) for space, members in _by_space(earlier).items()}
    found: list[Problem] = []
    for block in blocks:
        space = spaces.get(block.unit_space)
        clashes = () if space is None else space.clashes(block)
        other = next((o for o in clashes if nesting or not supersedes(block, o)), None)
        if other is not None:
            found.append(
                problem(
                    block.source_line,
                    serial_column,
                    f"{_relation(block, other)} of {other.project_code} ({other.serial}), "
                    "mirrored from an earlier file",
                    f"{_rule(programme)}; correct the file or the earlier import",
                )
            )
    return found


def clashing_pairs(
    programme: Programme, blocks: Sequence[EarlierBlock]
) -> list[tuple[EarlierBlock, EarlierBlock]]:
    """Every pair of ``blocks`` (mirrored, of ``programme``) that break the rule above, once each: what
    ``registry check`` reports if the mirror ever held such a pair."""
    nesting = programme in SUB_BLOCK_PROGRAMMES
    found = []
    for members in _by_space(blocks).values():
        space = _Space(members, nesting)
        position = {id(block): n for n, block in enumerate(members)}
        found += [(b, o) for b in members for o in space.clashes(b) if position[id(o)] < position[id(b)]]
    return found


def supersedes(block: ImportedBlock, earlier: EarlierBlock) -> bool:
    """Whether ``block``, of a newer export, takes over units of ``earlier`` where a block splits when
    part of it retires (Verra): any block over an active block of its project, or a retired or
    cancelled one over a retired or cancelled one. Units once retired never become active again."""
    same_project = project_code(block) == earlier.project_code
    return same_project and (_settled(block) or not _settled(earlier))


def units_by_status(blocks: Sequence[ImportedBlock]) -> dict[str, int]:
    """The units of a file's blocks by status, each unit counted once, by its innermost block: a
    retired block inside an issued one counts as retired, the rest of the issued one as issued."""
    found: dict[str, int] = {}
    for block in blocks:
        found[block.status.value] = found.get(block.status.value, 0) + block.quantity_tonnes
    for members in _by_space(blocks).values():
        issued = _Sorted([b for b in members if not _settled(b)])
        for block in members:
            if _settled(block) and any(_nested(block, outer) for outer in issued.overlapping(block)):
                found[BlockStatus.ISSUED.value] -= block.quantity_tonnes
    return found


class _Units(Protocol):
    @property
    def unit_space(self) -> str: ...
    @property
    def first_unit(self) -> int: ...
    @property
    def last_unit(self) -> int: ...
    @property
    def status(self) -> BlockStatus: ...


U = TypeVar("U", bound=_Units)


def _by_space(blocks: Iterable[U]) -> dict[str, list[U]]:
    spaces: dict[str, list[U]] = {}
    for block in blocks:
        spaces.setdefault(block.unit_space, []).append(block)
    return spaces


class _Space(Generic[U]):
    """The blocks of one unit space, issued and settled (retired or cancelled) apart; with
    ``nesting``, a settled block may lie inside an issued block of its project."""

    def __init__(self, blocks: Iterable[U], nesting: bool) -> None:
        self.nesting = nesting
        members = list(blocks)
        self.kinds = (
            _Sorted([b for b in members if not _settled(b)]),
            _Sorted([b for b in members if _settled(b)]),
        )

    def clashes(self, block: _Units) -> Iterator[U]:
        """The blocks sharing a unit with ``block`` that are not nested in it or it in them."""
        for kind in self.kinds:
            for other in kind.overlapping(block):
                if other is block:
                    continue
                if not self.nesting or not (_nested(block, other) or _nested(other, block)):
                    yield other


class _Sorted(Generic[U]):
    """Blocks sorted by first unit, with the furthest last unit reached at each position, so the
    blocks overlapping a range are found by a binary search even if some overlap each other."""

    def __init__(self, members: list[U]) -> None:
        self.members = sorted(members, key=lambda b: (b.first_unit, b.last_unit))
        self.furthest = list(itertools.accumulate((b.last_unit for b in self.members), max))

    def overlapping(self, block: _Units) -> Iterator[U]:
        # every member before the first one reaching the block's first unit ends before it
        for member in self.members[bisect.bisect_left(self.furthest, block.first_unit) :]:
            if member.first_unit > block.last_unit:
                return
            if member.last_unit >= block.first_unit:
                yield member


def _settled(block: _Units) -> bool:
    return block.status is not BlockStatus.ISSUED


def _nested(inner: _Units, outer: _Units) -> bool:
    """``inner`` is a retired or cancelled block inside ``outer``, an issued block of its project."""
    return (
        _settled(inner)
        and not _settled(outer)
        and outer.first_unit <= inner.first_unit
        and inner.last_unit <= outer.last_unit
        and _code(inner) == _code(outer)
    )


def _code(block: _Units) -> str:
    return block.project_code if isinstance(block, EarlierBlock) else project_code(cast(ImportedBlock, block))


def _relation(block: _Units, other: _Units) -> str:
    """How ``block`` clashes with ``other``, for a problem's message."""
    same = (block.first_unit, block.last_unit, block.status) == (
        other.first_unit,
        other.last_unit,
        other.status,
    )
    verb = "repeats" if same else "overlaps"
    return (
        f"serial range {block.first_unit}-{block.last_unit} ({block.status.value}) {verb} "
        f"the {other.status.value} range {other.first_unit}-{other.last_unit}"
    )


def _merged(earlier: ImportedProject, later: ImportedProject) -> ImportedProject:
    """``earlier`` completed by ``later``: list fields united, empty fields filled."""
    return dataclasses.replace(
        earlier,
        developer=earlier.developer or later.developer,
        project_type=earlier.project_type or later.project_type,
        methodology=earlier.methodology or later.methodology,
        sustainable_development_goals=_union(
            earlier.sustainable_development_goals, later.sustainable_development_goals
        ),
        additional_certifications=_union(earlier.additional_certifications, later.additional_certifications),
        programme_of_activities=earlier.programme_of_activities or later.programme_of_activities,
        poa_id=earlier.poa_id or later.poa_id,
        cross_references=_union(earlier.cross_references, later.cross_references),
    )


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a + b))
