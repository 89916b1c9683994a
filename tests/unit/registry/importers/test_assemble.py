"""Blocks of a file against each other and against blocks mirrored from earlier files: every unit
shared against the nesting rule is reported on its line."""

from __future__ import annotations

import dataclasses

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry.importers.assemble import EarlierBlock, ParsedRow, assemble, overlaps_with_earlier
from neutralize.registry.importers.records import BlockStatus, ImportedBlock, Programme, project_code
from neutralize.registry.importers.verra import parse_verra_export
from tests.unit.registry.importers.samples import sample

SAMPLE = parse_verra_export(sample("verra_export.csv"))
BLOCK = SAMPLE.blocks[0]  # units 941467007-941467431 of VCS-VER
PROJECT = next(p for p in SAMPLE.projects if p.project_id == BLOCK.project_id)


def block(
    first: int,
    last: int,
    line: int,
    space: str = "VCS-VER",
    status: BlockStatus = BlockStatus.ISSUED,
    programme: Programme = Programme.VERRA,
) -> ImportedBlock:
    return dataclasses.replace(
        BLOCK,
        programme=programme,
        first_unit=first,
        last_unit=last,
        quantity_tonnes=last - first + 1,
        source_line=line,
        unit_space=space,
        status=status,
    )


def gold_standard(
    first: int, last: int, line: int, status: BlockStatus = BlockStatus.ISSUED
) -> ImportedBlock:
    return block(first, last, line, status=status, programme=Programme.GOLD_STANDARD)


def retired(first: int, last: int, line: int) -> ImportedBlock:
    """A Gold Standard retired block: it may lie inside an issued block of its project."""
    return gold_standard(first, last, line, BlockStatus.RETIRED)


def earlier(
    first: int,
    last: int,
    space: str = "VCS-VER",
    code: str = "VCS-9",
    status: BlockStatus = BlockStatus.ISSUED,
) -> EarlierBlock:
    return EarlierBlock(
        unit_space=space,
        first_unit=first,
        last_unit=last,
        serial=f"{first}-{last}",
        project_code=code,
        status=status,
    )


def earlier_of_its_project(first: int, last: int, status: BlockStatus = BlockStatus.ISSUED) -> EarlierBlock:
    """An earlier block of the Gold Standard blocks' project."""
    return earlier(first, last, code=project_code(retired(1, 1, 0)), status=status)


def lines(blocks: list[ImportedBlock], known: list[EarlierBlock]) -> list[tuple[int | None, str | None]]:
    found = overlaps_with_earlier(blocks, known, "Serial Number")
    assert {p.code for p in found} <= {ErrorCode.INVALID_IMPORT}
    return [(p.row, p.field) for p in found]


def test_a_block_starting_at_an_earlier_blocks_first_unit_is_reported() -> None:
    # Given an earlier block 1000-2999; when a file's block 1000-1099 is checked against it
    found = overlaps_with_earlier([block(1000, 1099, 2)], [earlier(1000, 2999)], "Serial Number")
    # Then its line and the serial column are named, with the project that holds the units
    [problem] = found
    assert (problem.row, problem.field) == (2, "Serial Number")
    assert "1000-2999 of VCS-9" in problem.message


def test_every_overlapping_block_is_reported_and_the_others_are_not() -> None:
    # Given earlier blocks 1000-2999 and 5000-5999
    known = [earlier(5000, 5999), earlier(1000, 2999)]
    # When blocks before, between, across both ends and after them are checked
    blocks = [
        block(1, 999, 2),
        block(2999, 3000, 3),
        block(3000, 4999, 4),
        block(4000, 5000, 5),
        block(6000, 7000, 6),
        block(1500, 1600, 7),
        block(1, 10_000, 8),
    ]
    # Then exactly the blocks sharing a unit are reported
    assert lines(blocks, known) == [
        (3, "Serial Number"),
        (5, "Serial Number"),
        (7, "Serial Number"),
        (8, "Serial Number"),
    ]


def test_units_of_another_unit_space_do_not_overlap() -> None:
    assert lines([block(1000, 1099, 2, space="GS-30256")], [earlier(1000, 2999)]) == []


def test_a_wide_earlier_block_is_found_behind_narrower_ones() -> None:
    # Given earlier blocks that overlap each other, the widest first
    known = [earlier(1, 10_000), earlier(2, 3), earlier(4, 5)]
    # When a block beyond the narrow ones but inside the wide one is checked, it is reported
    assert lines([block(9000, 9001, 2)], known) == [(2, "Serial Number")]


def test_a_retired_block_may_lie_inside_an_earlier_issued_block_of_its_project() -> None:
    # Given an earlier issued block 1000-2999 of the block's own project
    known = [earlier_of_its_project(1000, 2999)]
    # When retired blocks inside it, from its first to its last unit, are checked, none is reported
    assert lines([retired(1000, 1099, 2), retired(1100, 2999, 3)], known) == []
    # But one sticking out of it, an issued one inside it, and one inside another project's are
    assert lines([retired(2900, 3000, 4), gold_standard(1500, 1600, 5)], known) == [
        (4, "Serial Number"),
        (5, "Serial Number"),
    ]
    assert lines([retired(1000, 1099, 6)], [earlier(1000, 2999)]) == [(6, "Serial Number")]


def test_an_issued_block_may_hold_earlier_retired_blocks_of_its_project() -> None:
    # Given retired blocks 1000-1099 and 2000-2099 of the project, mirrored from a retirements export
    known = [
        earlier_of_its_project(1000, 1099, BlockStatus.RETIRED),
        earlier_of_its_project(2000, 2099, BlockStatus.RETIRED),
    ]
    # When the issued block holding both is checked, it passes; one cutting through a retired block
    # does not, nor does a retired block over one of them
    assert lines([gold_standard(1000, 2999, 2)], known) == []
    assert lines([gold_standard(1050, 2999, 3)], known) == [(3, "Serial Number")]
    [found] = overlaps_with_earlier([retired(1000, 1099, 4)], known, "Serial Number")
    assert "(retired) repeats the retired range 1000-1099" in found.message


def test_within_a_file_retired_blocks_nest_in_issued_ones_and_nothing_else_overlaps() -> None:
    rows = [
        retired(10, 19, 2),  # before its issued block in the file
        gold_standard(1, 100, 3),
        retired(1, 9, 4),  # from the issued block's first unit
        retired(15, 30, 5),  # overlaps line 2's retired block
        retired(90, 110, 6),  # sticks out of the issued block
        gold_standard(100, 120, 7),  # overlaps line 3's issued block
    ]
    project = dataclasses.replace(PROJECT, programme=Programme.GOLD_STANDARD)
    parsed = [ParsedRow(project=project, block=row) for row in rows]
    with pytest.raises(DomainError) as caught:
        assemble(Programme.GOLD_STANDARD, parsed, [], identity={}, serial_column="Serial Number")
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (5, "Serial Number"),
        (6, "Serial Number"),
        (7, "Serial Number"),
    ]
    assert "on line 2" in caught.value.problems[0].message
    # and without the bad rows the file assembles, every block kept
    good = assemble(Programme.GOLD_STANDARD, parsed[:3], [], identity={}, serial_column="Serial Number")
    assert [b.source_line for b in good.blocks] == [2, 3, 4]


def test_verra_blocks_never_nest_but_a_newer_retirement_supersedes_an_active_block() -> None:
    # Verra splits a block when part of it is retired: a retired block inside an active one of the same
    # file is a fault, while one of a newer file takes its units out of the earlier active block
    verra_retired = block(1000, 1099, 2, status=BlockStatus.RETIRED)
    parsed = [
        ParsedRow(project=PROJECT, block=b)
        for b in (block(1000, 2999, 2), dataclasses.replace(verra_retired, source_line=3))
    ]
    with pytest.raises(DomainError) as caught:
        assemble(Programme.VERRA, parsed, [], identity={}, serial_column="Serial Number")
    assert [p.row for p in caught.value.problems] == [3]
    assert caught.value.problems[0].hint == "no two blocks may share a unit"
    assert lines([verra_retired], [earlier(1000, 2999, code=project_code(BLOCK))]) == []
    # but not one of another project, and an active block never takes over retired units
    assert lines([verra_retired], [earlier(1000, 2999)]) == [(2, "Serial Number")]
    retired_before = earlier(1000, 2999, code=project_code(BLOCK), status=BlockStatus.RETIRED)
    assert lines([block(1000, 1099, 4)], [retired_before]) == [(4, "Serial Number")]
