"""Checks across rows, then the all-or-nothing result: one project per id, no unit counted twice.

The same overlap rule holds across files: ``overlaps_with_earlier`` reports, in the same shape,
every block of a file that shares a unit with a block mirrored from an earlier one.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from neutralize.core.errors import Problem
from neutralize.registry.importers.records import ImportedBlock, ImportedProject, ImportResult, Programme
from neutralize.registry.importers.table import problem, reject


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
    found += _overlaps([row.block for row in consistent], serial_column)
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


def _overlaps(blocks: Sequence[ImportedBlock], serial_column: str) -> list[Problem]:
    """A problem on the later line of every pair of blocks that share a unit."""
    spaces: dict[str, list[ImportedBlock]] = {}
    for block in blocks:
        spaces.setdefault(block.unit_space, []).append(block)
    reported: set[int] = set()
    found: list[Problem] = []
    for members in spaces.values():
        members.sort(key=lambda b: (b.first_unit, b.source_line))
        reach = members[0]  # the block reaching furthest so far
        for block in members[1:]:
            if block.first_unit <= reach.last_unit:
                later, other = sorted((block, reach), key=lambda b: b.source_line, reverse=True)
                if later.source_line not in reported:
                    reported.add(later.source_line)
                    found.append(_overlap_problem(later, other, serial_column))
            if block.last_unit > reach.last_unit:
                reach = block
    return found


def _overlap_problem(later: ImportedBlock, other: ImportedBlock, serial_column: str) -> Problem:
    return problem(
        later.source_line,
        serial_column,
        f"serial range {later.first_unit}-{later.last_unit} {_verb(later, other)} the range "
        f"{other.first_unit}-{other.last_unit} on line {other.source_line}",
        "each unit may appear in one row only",
    )


def _verb(block: ImportedBlock, other: ImportedBlock | EarlierBlock) -> str:
    same = (block.first_unit, block.last_unit) == (other.first_unit, other.last_unit)
    return "repeats" if same else "overlaps"


@dataclass(frozen=True, slots=True)
class EarlierBlock:
    """A block mirrored from an earlier file: its units and the project (by code) that holds them."""

    unit_space: str
    first_unit: int
    last_unit: int
    serial: str
    project_code: str


def overlaps_with_earlier(
    blocks: Sequence[ImportedBlock], earlier: Iterable[EarlierBlock], serial_column: str
) -> list[Problem]:
    """A problem on the line of every block that shares a unit with a block of ``earlier``.

    ``earlier`` holds the blocks kept after the import, so the caller leaves out those the file
    replaces.
    """
    spaces: dict[str, list[EarlierBlock]] = {}
    for known in earlier:
        spaces.setdefault(known.unit_space, []).append(known)
    for known_in_space in spaces.values():
        known_in_space.sort(key=lambda b: (b.first_unit, b.last_unit))
    reaches = {space: _reach(members) for space, members in spaces.items()}
    found: list[Problem] = []
    for block in blocks:
        if block.unit_space not in spaces:
            continue
        other = _first_overlap(block, spaces[block.unit_space], reaches[block.unit_space])
        if other is not None:
            found.append(_earlier_overlap_problem(block, other, serial_column))
    return found


def _reach(members: Sequence[EarlierBlock]) -> tuple[list[int], list[int]]:
    """Per position of ``members`` (sorted by first unit), the furthest last unit reached so far
    and the position of the block reaching it: a binary search then finds an overlap even if
    earlier blocks were to overlap each other."""
    furthest: list[int] = []
    holder: list[int] = []
    for i, member in enumerate(members):
        if not furthest or member.last_unit > furthest[-1]:
            furthest.append(member.last_unit)
            holder.append(i)
        else:
            furthest.append(furthest[-1])
            holder.append(holder[-1])
    return furthest, holder


def _first_overlap(
    block: ImportedBlock, members: Sequence[EarlierBlock], reach: tuple[list[int], list[int]]
) -> EarlierBlock | None:
    furthest, holder = reach
    i = bisect.bisect_left(furthest, block.first_unit)  # the first position reaching the block
    if i == len(members) or members[i].first_unit > block.last_unit:
        return None
    return members[holder[i]]


def _earlier_overlap_problem(block: ImportedBlock, other: EarlierBlock, serial_column: str) -> Problem:
    return problem(
        block.source_line,
        serial_column,
        f"serial range {block.first_unit}-{block.last_unit} {_verb(block, other)} the range "
        f"{other.first_unit}-{other.last_unit} of {other.project_code} ({other.serial}), "
        "mirrored from an earlier file",
        "each unit may be in one block only; correct the file or the earlier import",
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
