"""Blocks of a file against blocks mirrored from earlier files: every shared unit is reported on its line."""

from __future__ import annotations

import dataclasses

from neutralize.core.errors import ErrorCode
from neutralize.registry.importers.assemble import EarlierBlock, overlaps_with_earlier
from neutralize.registry.importers.records import ImportedBlock
from neutralize.registry.importers.verra import parse_verra_export
from tests.unit.registry.importers.samples import sample

BLOCK = parse_verra_export(sample("verra_export.csv")).blocks[0]  # units 941467007-941467431 of VCS-VER


def block(first: int, last: int, line: int, space: str = "VCS-VER") -> ImportedBlock:
    return dataclasses.replace(
        BLOCK,
        first_unit=first,
        last_unit=last,
        quantity_tonnes=last - first + 1,
        source_line=line,
        unit_space=space,
    )


def earlier(first: int, last: int, space: str = "VCS-VER", code: str = "VCS-9") -> EarlierBlock:
    return EarlierBlock(
        unit_space=space, first_unit=first, last_unit=last, serial=f"{first}-{last}", project_code=code
    )


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
