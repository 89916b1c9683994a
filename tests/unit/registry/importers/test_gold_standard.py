"""The Gold Standard export parser on hand-written samples (``tests/data/registry/gold_standard_*.csv``)."""

from __future__ import annotations

from datetime import date

import pytest

from neutralize.registry.importers.gold_standard import (
    ISSUANCE_COLUMNS,
    RETIREMENT_COLUMNS,
    parse_gold_standard_export,
)
from neutralize.registry.importers.records import BlockStatus, Programme, SerialForm
from tests.unit.registry.importers.samples import csv_text, rejected, sample

VALID = {
    "Vintage": "2025",
    "Credit Status": "Retired",
    "Quantity": "5354",
    "GSID": "11603",
    "Project Name": "Efficient and Clean Cooking for households in Kenya",
    "Project Developer": "ECC- Talanton Trust",
    "Country": "Kenya",
    "Issuance Date": "2026-03-31",
    "Retirement Date": "2026-04-10",
    "Monitoring Period Start": "2024-03-02",
    "Monitoring Period End": "2025-03-10",
    "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-110-5463",
}


def retirements() -> list[tuple[int, str, BlockStatus, int]]:
    result = parse_gold_standard_export(sample("gold_standard_retirements.csv"))
    return [(b.source_line, b.project_id, b.status, b.quantity_tonnes) for b in result.blocks]


def test_every_row_of_the_retirements_sample_becomes_a_block() -> None:
    # Given the retirements sample: 7 rows, the first spanning lines 2-3
    # When it is parsed
    blocks = retirements()

    # Then each row is a block at the line it starts on, with its status and quantity
    assert blocks == [
        (2, "11603", BlockStatus.RETIRED, 5_354),
        (4, "11603", BlockStatus.RETIRED, 12_139),
        (5, "2429", BlockStatus.RETIRED, 3_526),
        (6, "1199", BlockStatus.RETIRED, 1_000),
        (7, "1199", BlockStatus.CANCELLED, 100),
        (8, "7080", BlockStatus.RETIRED, 100_303),
        (9, "9001", BlockStatus.RETIRED, 250),
    ]


def test_a_gold_standard_serial_gives_the_range_within_its_issuance_batch() -> None:
    # Given the first retirement, units 110-5463 of batch 30256
    # When it is parsed
    block = parse_gold_standard_export(sample("gold_standard_retirements.csv")).blocks[0]

    # Then the unit space is the serial before the range, and the retirement fields are mapped
    assert block.programme is Programme.GOLD_STANDARD
    assert block.serial_form is SerialForm.GS
    assert block.unit_space == "GS1-1-KE-GS11603-16-2025-30256"
    assert (block.first_unit, block.last_unit) == (110, 5463)
    assert block.retired_on == date(2026, 4, 10)
    assert (block.beneficiary, block.reason) == ("Example Tools AG", "Voluntary")
    assert (
        block.details == "Retirement on behalf of Example Tools AG for its Scope 1 and 2 emissions of 2025."
    )
    assert (block.product_type, block.article6_authorization) == ("VER", "Not Applicable")


def test_the_vintage_is_the_calendar_year_narrowed_to_the_monitoring_period() -> None:
    # Given a 2025 vintage of the period 2024-03-02 .. 2025-03-10, and a 2024 vintage of the same period
    # When the sample is parsed
    blocks = parse_gold_standard_export(sample("gold_standard_retirements.csv")).blocks

    # Then each vintage runs over its year's share of the period
    assert (blocks[0].vintage_start, blocks[0].vintage_end) == (date(2025, 1, 1), date(2025, 3, 10))
    assert (blocks[1].vintage_start, blocks[1].vintage_end) == (date(2024, 3, 2), date(2024, 12, 31))
    assert (blocks[0].monitoring_start, blocks[0].monitoring_end) == (date(2024, 3, 2), date(2025, 3, 10))


def test_a_vintage_without_monitoring_period_is_its_whole_calendar_year() -> None:
    # Given the CDM rows, which give no monitoring period
    # When the sample is parsed
    block = parse_gold_standard_export(sample("gold_standard_retirements.csv")).blocks[3]

    # Then the vintage is the calendar year
    assert (block.vintage_start, block.vintage_end) == (date(2014, 1, 1), date(2014, 12, 31))
    assert block.monitoring_start is None


def test_thousands_separators_and_day_first_dates_are_read() -> None:
    # Given the row with Quantity "12,139" retired on 10/04/2026
    # When it is parsed
    block = parse_gold_standard_export(sample("gold_standard_retirements.csv")).blocks[1]

    # Then the quantity is whole tonnes and the date is 10 April
    assert block.quantity_tonnes == 12_139
    assert block.retired_on == date(2026, 4, 10)
    assert block.labels == ("ICVCM CCP", "Emission Reduction")


def test_cdm_ranges_in_block_and_pair_shape_are_read() -> None:
    # Given the two rows of project 1199 with Kyoto/CDM serials
    # When the sample is parsed
    result = parse_gold_standard_export(sample("gold_standard_retirements.csv"))
    block, pair = (b for b in result.blocks if b.project_id == "1199")

    # Then both give their range in the space of the originating party and unit type
    assert (block.serial_form, block.unit_space, block.first_unit, block.last_unit) == (
        SerialForm.CDM_BLOCK,
        "CDM-IN-5",
        1001,
        2000,
    )
    assert (pair.serial_form, pair.unit_space, pair.first_unit, pair.last_unit) == (
        SerialForm.CDM_PAIR,
        "CDM-IN-5",
        2001,
        2100,
    )
    assert block.issued_on == date(2014, 5, 1)  # from 2014-05-01T10:21:27.721214


def test_projects_carry_developer_poa_and_cross_references() -> None:
    # Given the retirements sample
    # When it is parsed
    projects = {
        p.project_id: p for p in parse_gold_standard_export(sample("gold_standard_retirements.csv")).projects
    }

    # Then project fields come from the first row, the PoA id drops its ".0", and references are found
    kenya = projects["11603"]
    assert (kenya.developer, kenya.programme_of_activities, kenya.poa_id) == (
        "ECC- Talanton Trust",
        "VPA",
        "10789",
    )
    assert (kenya.country_code, kenya.cross_references) == ("KE", ())
    assert projects["1199"].cross_references == ("CDM:1234",)
    assert projects["9001"].cross_references == ("VCS:1340",)
    assert list(projects) == ["11603", "2429", "1199", "7080", "9001"]


def test_the_issuances_layout_is_accepted() -> None:
    # Given the issuances sample: 18 columns, ISO date-times, a PoA id written 11191.0
    # When it is parsed
    result = parse_gold_standard_export(sample("gold_standard_issuances.csv"))

    # Then its blocks are issued, dated, and the Tanzanian project maps to TZ
    assert [(b.source_line, b.status, b.quantity_tonnes) for b in result.blocks] == [
        (2, BlockStatus.ISSUED, 19_149),
        (3, BlockStatus.ISSUED, 416),
        (4, BlockStatus.ISSUED, 4_568),
    ]
    assert result.blocks[0].issued_on == date(2026, 4, 13)
    assert result.blocks[1].retired_on is None
    assert (result.blocks[1].vintage_start, result.blocks[1].vintage_end) == (
        date(2023, 9, 20),
        date(2023, 12, 31),
    )
    projects = {p.project_id: p for p in result.projects}
    assert projects["11544"].country_code == "TZ"
    assert projects["11236"].poa_id == "11191"


def test_every_bad_row_is_reported_with_its_line_and_column() -> None:
    # Given a file with one valid row (line 2) and one fault on each of lines 3-10
    text = sample("gold_standard_bad_rows.csv")

    # When it is parsed
    problems = rejected(parse_gold_standard_export, text)

    # Then each bad row is reported once, at its line, naming the column at fault
    assert problems == [
        (3, "Credit Status"),  # Pending Retirement
        (4, "Quantity"),  # 1,23
        (5, "Monitoring Period End"),  # ends before it starts
        (6, "Serial Number"),  # no range
        (7, "Quantity"),  # 5000 tonnes, range of 4999
        (8, "Retirement Date"),  # retired without a date
        (9, "Serial Number"),  # overlaps line 2 in batch 30256
        (10, "Vintage"),  # 20x4
    ]


def test_one_bad_row_refuses_the_whole_file() -> None:
    # Given two valid rows and a third whose quantity disagrees with its serial
    rows = [
        VALID,
        {**VALID, "Quantity": "10", "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-1-10"},
        {**VALID, "Quantity": "11", "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-11-20"},
    ]

    # When the file is parsed
    problems = rejected(parse_gold_standard_export, csv_text(RETIREMENT_COLUMNS, rows))

    # Then nothing is returned; only line 4 is reported
    assert problems == [(4, "Quantity")]


def test_the_same_range_in_different_batches_is_not_a_duplicate() -> None:
    # Given units 1-10 of batch 30256 and units 1-10 of batch 30257
    rows = [
        {**VALID, "Quantity": "10", "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-1-10"},
        {**VALID, "Quantity": "10", "Serial Number": "GS1-1-KE-GS11603-16-2025-30257-1-10"},
    ]

    # When the file is parsed
    result = parse_gold_standard_export(csv_text(RETIREMENT_COLUMNS, rows))

    # Then both blocks are accepted, in different unit spaces
    assert [b.unit_space for b in result.blocks] == [
        "GS1-1-KE-GS11603-16-2025-30256",
        "GS1-1-KE-GS11603-16-2025-30257",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Serial Number": "GS1-1-KE-GS11604-16-2025-30256-110-5463"}, "Serial Number"),  # another GSID
        ({"Serial Number": "GS1-1-KE-GS11603-16-2024-30256-110-5463"}, "Serial Number"),  # another vintage
        ({"Serial Number": "IN-5-1001-2-2-0-1234 - IN-5-6354-2-2-0-9999"}, "Serial Number"),  # ends disagree
        ({"Serial Number": "GS1-1-KE-GS11603-16-2025-30256-0-5353"}, "Serial Number"),  # unit 0
        ({"Credit Status": "Issued"}, "Retirement Date"),  # issued, yet dated
        ({"Vintage": "2023"}, "Serial Number"),  # serial says 2025
        ({"Monitoring Period End": ""}, "Monitoring Period End"),
        ({"Retirement Date": "2026-04-31"}, "Retirement Date"),
        ({"GSID": "GS11603"}, "GSID"),
        ({"Country": ""}, "Country"),
        ({"POA GSID": "10789.5"}, "POA GSID"),
    ],
)
def test_a_faulty_cell_is_reported_at_its_column(change: dict[str, str], field: str) -> None:
    # Given an otherwise valid row with one faulty cell
    text = csv_text(RETIREMENT_COLUMNS, [{**VALID, **change}])

    # When it is parsed
    problems = rejected(parse_gold_standard_export, text)

    # Then the row's line and the faulty column are reported
    assert problems == [(2, field)]


def test_a_vintage_outside_the_monitoring_period_is_refused() -> None:
    # Given a 2025 vintage of a period that ended in 2024
    row = {**VALID, "Monitoring Period Start": "2023-01-01", "Monitoring Period End": "2024-12-31"}

    # When it is parsed
    problems = rejected(parse_gold_standard_export, csv_text(RETIREMENT_COLUMNS, [row]))

    # Then the Vintage is at fault
    assert problems == [(2, "Vintage")]


def test_a_project_named_differently_on_a_later_row_is_refused() -> None:
    # Given two rows of GSID 11603 in different countries
    rows = [
        VALID,
        {
            **VALID,
            "Country": "Uganda",
            "Quantity": "1",
            "Serial Number": "GS1-1-KE-GS11603-16-2025-30999-1-1",
        },
    ]

    # When the file is parsed
    problems = rejected(parse_gold_standard_export, csv_text(RETIREMENT_COLUMNS, rows))

    # Then the later row is reported at Country
    assert problems == [(3, "Country")]


def test_a_missing_column_is_judged_against_the_closest_layout() -> None:
    # Given the retirements layout without its Note column
    columns = [c for c in RETIREMENT_COLUMNS if c != "Note"]

    # When it is parsed
    problems = rejected(parse_gold_standard_export, csv_text(columns, [VALID]))

    # Then only Note is reported missing (not the four columns the issuances layout lacks)
    assert problems == [(1, "Note")]


def test_a_mix_of_layouts_reports_missing_and_extra_columns() -> None:
    # Given the issuances layout plus one retirements-only column and one unknown column
    columns = [*ISSUANCE_COLUMNS, "Retirement Date", "Comment"]

    # When it is parsed
    problems = rejected(parse_gold_standard_export, csv_text(columns, []))

    # Then the unknown column is reported against the issuances layout, as is the retirements-only one
    assert sorted(problems, key=str) == [(1, "Comment"), (1, "Retirement Date")]


def test_the_issuances_export_holds_issued_blocks_only() -> None:
    # Given an issuances export with a cancelled row: it would replace the project's retirements and
    # cancellations mirrored from the retirements export with this one block
    issued = {c: VALID[c] for c in ISSUANCE_COLUMNS if c in VALID} | {"Credit Status": "Issued"}
    rows = [
        issued,
        {**issued, "Credit Status": "Cancelled", "Serial Number": "GS1-1-KE-GS11603-16-2025-30257-1-5354"},
    ]

    # When it is parsed, the cancelled row is refused at its Credit Status
    assert rejected(parse_gold_standard_export, csv_text(ISSUANCE_COLUMNS, rows)) == [(3, "Credit Status")]
