"""The factor catalogue: loading, validation at load, ids and search."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint.factors import PackageFactorSource, default_catalogue, load_catalogue
from neutralize.footprint.vocabulary import FACTOR_SETS


class EditedSource(PackageFactorSource):
    """The shipped files with one file replaced by test text."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text

    def open_text(self, name: str) -> Iterator[str]:
        if name == self.name:
            yield from self.text.splitlines(keepends=True)
        else:
            yield from super().open_text(name)


def _desnz_with(row: str) -> str:
    header = "factor_id,scope,level_1,level_2,level_3,level_4,column_text,unit,ghg_unit,value,edition\n"
    return header + row


def test_shipped_catalogue_loads_every_set_with_exact_values() -> None:
    catalogue = default_catalogue()
    assert {f.factor_set for f in catalogue} == set(FACTOR_SETS)
    assert catalogue.get("DESNZ-2025", "25_301_3069_4_1").value == Decimal("0.17304")
    # the source's binary-float spelling is kept exactly, not rounded
    assert catalogue.get("DESNZ-2025", "4_302_3077_9_1").value == Decimal("0.13388999999999998")
    assert catalogue.get("MEE-NBS", "CN-GD:2023:statistical_average").gas_basis == "CO2"
    assert catalogue.get("DESNZ-2025", "29_600_4017_13_1").licence == "Open Government Licence v3.0"


def test_zero_factors_are_valid() -> None:
    zeros = [f for f in default_catalogue() if f.value == 0]
    assert zeros, "DESNZ publishes zeros (e.g. direct emissions of battery cars)"


def test_desnz_ids_are_unique_within_an_edition_but_repeat_across_editions() -> None:
    catalogue = default_catalogue()
    assert catalogue.get("DESNZ-2024", "25_301_3069_4_1").value == Decimal("0.16984")
    assert catalogue.get("DESNZ-2025", "25_301_3069_4_1").value == Decimal("0.17304")


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,-1,2025\n", "must be finite and >= 0"),
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,NaN,2025\n", "must be finite and >= 0"),
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,Infinity,2025\n", "must be finite and >= 0"),
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,abc,2025\n", "is not a number"),
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,1,2024\n", "edition"),
        ("x_1,Scope 3,A,B,,,,km,kg CO2e,1,2025\nx_1,Scope 3,A,B,,,,km,kg CO2e,2,2025\n", "duplicate"),
    ],
)
def test_bad_rows_are_refused_at_load(row: str, fragment: str) -> None:
    # given a DESNZ file with one bad row; when loaded; then the load fails with a data code
    with pytest.raises(DomainError) as caught:
        load_catalogue(EditedSource("desnz_2025.csv", _desnz_with(row)))
    assert caught.value.code == ErrorCode.FACTOR_DATA_INVALID
    assert fragment in caught.value.problems[0].message


def test_a_missing_column_is_refused_at_load() -> None:
    with pytest.raises(DomainError) as caught:
        load_catalogue(EditedSource("diets_scarborough_2014.csv", "diet,description\nvegan,Vegans\n"))
    assert "lacks columns" in caught.value.problems[0].message


def test_search_matches_every_word_and_filters_by_set() -> None:
    found = default_catalogue().search("hotel germany")
    assert {f.factor_set for f in found} == {"DESNZ-2024", "DESNZ-2025"}
    only = default_catalogue().search("hotel germany", factor_set="DESNZ-2024")
    assert [f.factor_id for f in only] == ["29_600_4017_13_1"]
    assert default_catalogue().search("no such factor anywhere") == []


def test_package_data_carries_provenance_and_licences() -> None:
    root = Path(__file__).resolve().parents[3] / "src" / "neutralize" / "footprint" / "data"
    text = (root / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "Open Government Licence v3.0" in text
    assert (root / "LICENCES.md").is_file()
