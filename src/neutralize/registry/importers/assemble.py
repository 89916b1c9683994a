"""Checks across rows, then the all-or-nothing result: one project per id, no unit counted twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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
    same = (later.first_unit, later.last_unit) == (other.first_unit, other.last_unit)
    verb = "repeats" if same else "overlaps"
    return problem(
        later.source_line,
        serial_column,
        f"serial range {later.first_unit}-{later.last_unit} {verb} the range "
        f"{other.first_unit}-{other.last_unit} on line {other.source_line}",
        "each unit may appear in one row only",
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
