"""Cell readers shared by the importers: dates, tonnes, ids, lists, countries and references."""

from __future__ import annotations

from datetime import date

import pytest

from neutralize.registry.importers.countries import country_code
from neutralize.registry.importers.references import cross_references
from neutralize.registry.importers.table import (
    Row,
    RowError,
    calendar_date,
    identifier,
    items,
    tonnes,
)


def row(value: str) -> Row:
    return Row(line=2, cells={"X": value})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-05-03", date(2021, 5, 3)),
        ("03/05/2021", date(2021, 5, 3)),  # day first
        ("3/5/2021", date(2021, 5, 3)),
        ("2026-04-13T12:35:58.842275", date(2026, 4, 13)),
        ("2026-04-13 23:59", date(2026, 4, 13)),
        ("2026-04-13T23:30:00+05:30", date(2026, 4, 13)),  # the date as written
        ("", None),
    ],
)
def test_accepted_date_formats(text: str, expected: date | None) -> None:
    # Given a cell in one of the accepted date formats
    # When it is read
    # Then it gives the calendar date written
    assert calendar_date(row(text), "X") == expected


@pytest.mark.parametrize(
    "text", ["2021-02-29", "13/13/2021", "2021/05/03", "05-03-2021", "03.05.2021", "May 3 2021"]
)
def test_other_date_formats_are_refused(text: str) -> None:
    # Given a cell that is not an accepted date
    # When it is read
    # Then the column is reported
    with pytest.raises(RowError) as caught:
        calendar_date(row(text), "X")
    assert caught.value.field == "X"


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1), ("1234", 1234), ("1,234", 1234), ("1,454,054", 1_454_054), ("007", 7)]
)
def test_whole_tonnes_with_or_without_separators(text: str, expected: int) -> None:
    # Given a quantity cell
    # When it is read
    # Then it gives whole tonnes
    assert tonnes(row(text), "X") == expected


@pytest.mark.parametrize(
    "text", ["0", "-5", "12.5", "1,23", "1,2345", ",123", "1 234", "1.234", "1e3", "10000000000001"]
)
def test_other_quantities_are_refused(text: str) -> None:
    # Given a cell that is not a positive whole number of tonnes (or above the limit)
    # When it is read
    # Then it is refused
    with pytest.raises(RowError):
        tonnes(row(text), "X")


@pytest.mark.parametrize(("text", "expected"), [("1340", "1340"), ("11191.0", "11191"), ("0042", "42")])
def test_numeric_ids(text: str, expected: str) -> None:
    # Given an id cell, possibly written as a spreadsheet float
    # When it is read
    # Then it gives the digits
    assert identifier(row(text), "X") == expected


def test_list_cells_keep_distinct_items_in_order() -> None:
    # Given a list cell with blanks and a repeat
    # When it is split
    # Then blanks and repeats are dropped
    assert items(" a; b ;; a;c ", ";") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Viet Nam", "VN"),
        ("Tanzania United Republic of", "TZ"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
        ("Cote d'Ivoire", "CI"),
        ("Congo, The Democratic Republic of the", "CD"),
        ("Democratic Republic of the Congo", "CD"),
        ("united states", "US"),
        ("International", None),
    ],
)
def test_country_names_map_to_alpha_2(name: str, code: str | None) -> None:
    # Given a country name as a registry publishes it
    # When it is mapped
    # Then it gives the ISO alpha-2 code, or None when it names no single country
    assert country_code(name) == code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Gold Standard GS7080", ("GS:7080",)),
        ("also registered as VCS 1340 and GS-2429", ("VCS:1340", "GS:2429")),
        ("Verra project ID: 981", ("VCS:981",)),
        ("Gold Standard project 1199; CDM project 1234", ("GS:1199", "CDM:1234")),
        ("19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", ()),
        ("GS1-1-KE-GS11603-16-2025-30256-110-5463", ()),
        ("GS TPDDTEC v3.1; CORSIA - First Phase, 2024-2026 Scope", ()),
        ("", ()),
    ],
)
def test_cross_references_in_free_text(text: str, expected: tuple[str, ...]) -> None:
    # Given free text from an export
    # When references are extracted
    # Then programme-qualified ids are found and serial strings are not
    assert cross_references(text) == expected
