"""The Verra VCS export parser on hand-written samples (``tests/data/registry/verra_*.csv``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from neutralize.core.errors import DomainError
from neutralize.registry.importers.records import BlockStatus, Programme, SerialForm
from neutralize.registry.importers.table import MAX_CELL_CHARS, MAX_PROBLEMS
from neutralize.registry.importers.verra import COLUMNS, parse_verra_export
from tests.unit.registry.importers.samples import DATA, csv_text, rejected, sample

VALID = {
    "Issuance Date": "2026-04-03",
    "Vintage Start": "2020-01-01",
    "Vintage End": "2020-12-31",
    "ID": "1340",
    "Name": "Bale Highlands REDD+ Project",
    "Country/Area": "Ethiopia",
    "Total Vintage Quantity": "1,454,054",
    "Quantity Issued": "425",
    "Serial Number": "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
}


def serial(first: int, last: int, project: int = 1340, start: str = "01012020", end: str = "31122020") -> str:
    return f"19385-{first}-{last}-VCS-VCU-1507-VER-ET-14-{project}-{start}-{end}-1"


def test_every_row_of_the_sample_becomes_a_block_and_each_project_appears_once() -> None:
    # Given the sample export: 8 rows (one spanning two lines) for 5 projects
    text = sample("verra_export.csv")

    # When it is parsed
    result = parse_verra_export(text)

    # Then every row is a block, in file order, and projects are listed once in order of first mention
    assert result.programme is Programme.VERRA
    assert [b.source_line for b in result.blocks] == [2, 3, 4, 6, 7, 8, 9]
    assert [p.project_id for p in result.projects] == ["1340", "4101", "1360", "2250", "3110"]
    assert all(b.programme is Programme.VERRA for b in result.blocks)


def test_a_current_13_field_serial_gives_the_unit_range_and_its_space() -> None:
    # Given the sample's first row
    # When it is parsed
    block = parse_verra_export(sample("verra_export.csv")).blocks[0]

    # Then the range, quantity and vintage come from the serial and the columns
    assert block.serial_form is SerialForm.VCS_13
    assert (block.first_unit, block.last_unit, block.quantity_tonnes) == (941467007, 941467431, 425)
    assert block.unit_space == "VCS-VER"
    assert (block.vintage_start, block.vintage_end) == (date(2020, 1, 1), date(2020, 12, 31))
    assert block.serial_country == "ET"
    assert block.labels == ("CCB-No Distinction",)


def test_an_older_12_field_serial_without_the_programme_field_is_read() -> None:
    # Given the sample row with a Markit-era serial (…-VCU-042-MER-PE-…)
    # When it is parsed
    block = next(b for b in parse_verra_export(sample("verra_export.csv")).blocks if b.project_id == "1360")

    # Then its form, registry space and vintage are read from the 12 fields
    assert block.serial_form is SerialForm.VCS_12
    assert block.unit_space == "VCS-MER"
    assert (block.first_unit, block.last_unit, block.quantity_tonnes) == (449402275, 449402275, 1)
    assert (block.vintage_start, block.vintage_end) == (date(2013, 7, 1), date(2014, 6, 30))


def test_quantities_with_thousands_separators_are_whole_tonnes() -> None:
    # Given rows whose quantities are written "1,250" and "1,454,054"
    # When the sample is parsed
    blocks = parse_verra_export(sample("verra_export.csv")).blocks

    # Then they read as integers
    assert blocks[1].quantity_tonnes == 1_250
    assert blocks[1].vintage_total_tonnes == 1_454_054
    assert blocks[6].quantity_tonnes == 64_898


def test_day_first_dates_are_read_as_day_month_year() -> None:
    # Given the row dated 19/03/2026 with vintage 01/10/2024 – 31/12/2024 and retired 20/03/2026
    # When it is parsed
    block = parse_verra_export(sample("verra_export.csv")).blocks[2]

    # Then day comes first
    assert block.issued_on == date(2026, 3, 19)
    assert (block.vintage_start, block.vintage_end) == (date(2024, 10, 1), date(2024, 12, 31))
    assert block.retired_on == date(2026, 3, 20)


def test_status_follows_the_retirement_date_and_reason() -> None:
    # Given retired, still-active and cancelled rows
    # When the sample is parsed
    statuses = [b.status for b in parse_verra_export(sample("verra_export.csv")).blocks]

    # Then a dated row is retired unless its reason says cancelled; an undated row is issued
    assert statuses == [
        BlockStatus.RETIRED,
        BlockStatus.ISSUED,
        BlockStatus.RETIRED,
        BlockStatus.CANCELLED,
        BlockStatus.ISSUED,
        BlockStatus.RETIRED,
        BlockStatus.ISSUED,
    ]


def test_retirement_text_is_kept_whole_including_a_line_break() -> None:
    # Given the retirement whose details span two lines of the file
    # When it is parsed
    block = parse_verra_export(sample("verra_export.csv")).blocks[2]

    # Then beneficiary, reason and details are kept as published
    assert block.beneficiary == "Example Airline Co., Ltd."
    assert block.reason == "Retirement for Person or Organization"
    assert block.details == (
        "Retired on behalf of Example Airline Co., Ltd.\nfor its 2025 CORSIA offsetting requirements"
    )


def test_a_grouped_project_keeps_its_country_while_serials_name_others() -> None:
    # Given project 4101 in Rwanda with one serial naming CD and one naming RW
    # When the sample is parsed
    result = parse_verra_export(sample("verra_export.csv"))
    project = next(p for p in result.projects if p.project_id == "4101")

    # Then the project is Rwandan, each block keeps its serial's country, and labels are united
    assert (project.country_name, project.country_code) == ("Rwanda", "RW")
    assert [b.serial_country for b in result.blocks if b.project_id == "4101"] == ["CD", "RW"]
    assert project.additional_certifications == (
        "Article 6 Authorized – NDC Use",
        "CORSIA - First Phase, 2024-2026 Scope",
    )
    assert project.sustainable_development_goals == (
        "01: No Poverty",
        "07: Affordable and Clean Energy",
        "13: Climate Action",
    )
    assert project.methodology == "VMR0006; VM0050"
    assert project.developer is None


def test_a_gold_standard_id_in_additional_certifications_is_a_cross_reference() -> None:
    # Given project 3110 whose Additional Certifications read "Gold Standard GS7080"
    # When the sample is parsed
    projects = {p.project_id: p for p in parse_verra_export(sample("verra_export.csv")).projects}

    # Then it references GS 7080, and projects naming no other programme have no references
    assert projects["3110"].cross_references == ("GS:7080",)
    assert projects["1340"].cross_references == ()


def test_lines_of_an_open_file_parse_like_its_text() -> None:
    # Given the sample as text and as the lines of a file opened with newline=""
    text = sample("verra_export.csv")
    with Path(DATA / "verra_export.csv").open(encoding="utf-8", newline="") as lines:
        # When both are parsed
        from_lines = parse_verra_export(lines)

    # Then the results are equal
    assert from_lines == parse_verra_export(text)


def test_every_bad_row_is_reported_with_its_line_and_column() -> None:
    # Given a file with one valid row (line 2) and one fault on each of lines 3-12
    text = sample("verra_bad_rows.csv")

    # When it is parsed
    problems = rejected(parse_verra_export, text)

    # Then each bad row is reported once, at its line, naming the column at fault
    assert problems == [
        (3, "Quantity Issued"),  # 12.5 is not whole tonnes
        (4, "Vintage Start"),  # month 13
        (5, "Vintage End"),  # ends before it starts
        (6, "Serial Number"),  # VCX is not a credit type
        (7, "Quantity Issued"),  # 100 tonnes, range of 99
        (8, "Serial Number"),  # repeats line 2's range
        (9, None),  # three cells
        (10, "Issuance Date"),  # 31 February
        (11, "Name"),  # project 1340 renamed
        (12, "Serial Number"),  # serial names project 1341
    ]


def test_one_bad_row_refuses_the_whole_file() -> None:
    # Given the valid sample with one bad row appended at line 10
    text = (
        sample("verra_export.csv") + csv_text(COLUMNS, [{**VALID, "Quantity Issued": "-5"}]).split("\n", 1)[1]
    )

    # When it is parsed
    problems = rejected(parse_verra_export, text)

    # Then nothing is returned and only the bad row is reported
    assert problems == [(10, "Quantity Issued")]


def test_an_overlapping_range_is_reported_on_the_later_line() -> None:
    # Given two rows whose ranges share units, the wider one second
    rows = [
        {**VALID, "Quantity Issued": "100", "Serial Number": serial(941467100, 941467199)},
        {**VALID, "Quantity Issued": "425"},
    ]

    # When the file is parsed
    problems = rejected(parse_verra_export, csv_text(COLUMNS, rows))

    # Then the second row carries the problem
    assert problems == [(3, "Serial Number")]


def test_ranges_sharing_one_boundary_unit_overlap() -> None:
    # Given a second row whose first unit is the first row's last unit
    rows = [VALID, {**VALID, "Quantity Issued": "2", "Serial Number": serial(941467431, 941467432)}]

    # When the file is parsed
    problems = rejected(parse_verra_export, csv_text(COLUMNS, rows))

    # Then the second row is reported
    assert problems == [(3, "Serial Number")]


def test_adjacent_ranges_do_not_overlap() -> None:
    # Given two rows whose ranges touch but do not share a unit
    rows = [VALID, {**VALID, "Quantity Issued": "1", "Serial Number": serial(941467432, 941467432)}]

    # When the file is parsed
    result = parse_verra_export(csv_text(COLUMNS, rows))

    # Then both blocks are accepted
    assert [b.last_unit for b in result.blocks] == [941467431, 941467432]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Serial Number": serial(941467007, 941467431, project=1341)}, "Serial Number"),
        ({"Serial Number": serial(941467007, 941467431, start="02012020")}, "Serial Number"),
        ({"Serial Number": serial(941467431, 941467007)}, "Serial Number"),
        ({"Serial Number": serial(941467007, 941467431, end="31022020")}, "Serial Number"),
        ({"Quantity Issued": "0"}, "Quantity Issued"),
        ({"Quantity Issued": "1,23"}, "Quantity Issued"),
        ({"Quantity Issued": ""}, "Quantity Issued"),
        ({"Total Vintage Quantity": "many"}, "Total Vintage Quantity"),
        ({"ID": "VCS1340"}, "ID"),
        ({"Name": ""}, "Name"),
        ({"Retirement/Cancellation Date": "10.04.2026"}, "Retirement/Cancellation Date"),
        ({"Retirement Details": "x" * (MAX_CELL_CHARS + 1)}, "Retirement Details"),
        ({"Retirement Beneficiary": "x" * 501}, "Retirement Beneficiary"),  # longer than kept: not cut
        ({"Name": "x" * 301}, "Name"),
        ({"Methodology": "VM0015\x00"}, "Methodology"),  # no database keeps a NUL in text
    ],
)
def test_a_faulty_cell_is_reported_at_its_column(change: dict[str, str], field: str) -> None:
    # Given an otherwise valid row with one faulty cell
    text = csv_text(COLUMNS, [{**VALID, **change}])

    # When it is parsed
    problems = rejected(parse_verra_export, text)

    # Then the row's line and the faulty column are reported
    assert problems == [(2, field)]


def test_a_missing_column_is_a_file_problem_on_the_header_line() -> None:
    # Given an export without its Serial Number column
    columns = [c for c in COLUMNS if c != "Serial Number"]

    # When it is parsed
    problems = rejected(parse_verra_export, csv_text(columns, [VALID]))

    # Then the header line names the missing column, and no row is checked
    assert problems == [(1, "Serial Number")]


def test_an_extra_column_is_a_file_problem_on_the_header_line() -> None:
    # Given an export with an unknown column
    columns = [*COLUMNS, "Comment"]

    # When it is parsed
    problems = rejected(parse_verra_export, csv_text(columns, [VALID]))

    # Then the header line names the extra column
    assert problems == [(1, "Comment")]


def test_a_repeated_column_is_a_file_problem() -> None:
    # Given a header naming ID twice
    text = csv_text([*COLUMNS, "ID"], [])

    # When it is parsed
    problems = rejected(parse_verra_export, text)

    # Then the repeated column is reported on line 1
    assert problems == [(1, "ID")]


def test_an_empty_file_is_refused() -> None:
    # Given no text at all
    # When it is parsed
    problems = rejected(parse_verra_export, "")

    # Then line 1 is reported
    assert problems == [(1, None)]


def test_a_header_only_file_imports_nothing() -> None:
    # Given the header, a byte-order mark in front, and blank lines after it
    text = "\ufeff" + csv_text(COLUMNS, []) + "\n\n"

    # When it is parsed
    result = parse_verra_export(text)

    # Then the result is empty
    assert (result.projects, result.blocks) == ((), ())


def test_more_rows_than_the_limit_is_refused_at_the_first_row_too_many() -> None:
    # Given three valid rows and a limit of two
    rows = [
        {**VALID, "Quantity Issued": "1", "Serial Number": serial(n, n)}
        for n in (941467007, 941467008, 941467009)
    ]

    # When the file is parsed
    with pytest.raises(DomainError) as caught:
        parse_verra_export(csv_text(COLUMNS, rows), max_rows=2)

    # Then the fourth line is reported as one too many
    assert [(p.row, p.field) for p in caught.value.problems] == [(4, None)]


def test_invalid_csv_quoting_is_a_file_problem() -> None:
    # Given a row with a stray quote after a quoted cell
    text = csv_text(COLUMNS, []) + '"2026-04-03"x,,\n'

    # When it is parsed
    problems = rejected(parse_verra_export, text)

    # Then the line is reported without a column
    assert problems == [(2, None)]


def test_the_listed_problems_are_capped_and_the_message_gives_the_total() -> None:
    # Given more bad rows than are listed
    rows = [{**VALID, "ID": "x"} for _ in range(MAX_PROBLEMS + 5)]

    # When the file is parsed
    with pytest.raises(DomainError) as caught:
        parse_verra_export(csv_text(COLUMNS, rows))

    # Then the first MAX_PROBLEMS rows are listed and the message counts all of them
    assert [p.row for p in caught.value.problems] == list(range(2, MAX_PROBLEMS + 2))
    assert str(MAX_PROBLEMS + 5) in caught.value.message
