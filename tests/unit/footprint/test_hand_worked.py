"""Each activity type against values worked by hand from the published factor tables."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import airportsdata
import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint import service
from neutralize.footprint.schemas import FootprintLine

AIRPORTS = airportsdata.load("IATA")


def one(activity: dict[str, Any]) -> FootprintLine:
    [line] = service.calculate(activities=[activity]).lines
    return line


def great_circle_km(a: str, b: str) -> Decimal:
    lat1, lon1 = math.radians(AIRPORTS[a]["lat"]), math.radians(AIRPORTS[a]["lon"])
    lat2, lon2 = math.radians(AIRPORTS[b]["lat"]), math.radians(AIRPORTS[b]["lon"])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return Decimal(2 * 6371 * math.asin(math.sqrt(h))).quantize(Decimal("0.001"), ROUND_HALF_EVEN)


def kg(value: str | Decimal) -> Decimal:
    return Decimal(value).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


# (activity, factor id, expected kg worked from the table value)
TABLE_CASES = [
    ({"type": "car", "fuel": "petrol", "size": "small", "distance_km": 100}, "25_301_3046_4_1", "14.308"),
    (
        {"type": "car", "fuel": "bev", "distance_miles": 10},
        "25_301_3076_4_1",
        Decimal("10") * Decimal("1.609344") * Decimal("0.04047"),
    ),
    ({"type": "taxi", "distance_km": 12}, "25_313_3141_4_1", "2.49672"),
    (
        {"type": "taxi", "basis": "passenger", "passengers": 2, "distance_km": 12},
        "25_313_3141_11_1",
        "3.56664",
    ),
    ({"type": "motorbike", "size": "large", "distance_km": 30}, "25_302_3079_4_1", "3.9756"),
    ({"type": "bus", "mode": "local_bus", "distance_km": 10, "passengers": 2}, "25_314_3145_11_1", "2.077"),
    ({"type": "rail", "mode": "metro", "distance_km": 8}, "25_315_3150_11_1", "0.2224"),
    ({"type": "ferry", "mode": "foot_passenger", "distance_km": 40}, "23_318_3188_11_1", "0.7484"),
    ({"type": "hotel", "country": "CN", "nights": 2, "rooms": 2}, "29_600_4009_13_1", "214"),
    ({"type": "hotel", "country": "GB-LND", "nights": 1}, "29_600_4001_13_1", "11.5"),
    ({"type": "meal", "diet": "high_meat", "count": 2}, "diet:high_meat", Decimal("7.19") * 2 / 3),
    (
        {"type": "electricity", "region": "CN-SC", "year": 2023, "kwh": 1000},
        "CN-SC:2023:statistical_average",
        "156.4",
    ),
    (
        {"type": "electricity", "region": "CN-SC", "year": 2022, "kwh": 1000},
        "CN-SC:2022:statistical_average",
        "140.4",
    ),
    ({"type": "electricity", "region": "GB", "kwh": 100}, "7_400_4000_5_1", "17.7"),
    (
        {"type": "electricity", "region": "CN-SC", "kwh": 1000, "factor_set": "MEE-ETS-2022"},
        "CN:2022:ets_reporting",
        "570.3",
    ),
    ({"type": "fuel", "fuel": "diesel", "litres": 100}, "1_101_1011_8_1", "257.082"),
    ({"type": "fuel", "fuel": "diesel", "litres": 100, "blend": "mineral"}, "1_101_1012_8_1", "266.155"),
    ({"type": "fuel", "fuel": "natural_gas", "m3": 10}, "1_100_1004_1_1", "20.6672"),
    ({"type": "fuel", "fuel": "coal", "kg": 1000}, "1_102_1025_15_1", "2395.28994"),
    (
        {"type": "fuel", "fuel": "diesel", "kg": 1000, "factor_set": "IPCC-2006"},
        "gas_diesel_oil:co2_per_tj",
        Decimal(74100) * Decimal("43.0") / 1_000_000 * 1000,
    ),
    (
        {"type": "fuel", "fuel": "natural_gas", "kwh": 100, "factor_set": "IPCC-2006"},
        "natural_gas:co2_per_tj",
        Decimal(56100) * Decimal("0.0000036") * 100,
    ),
    (
        {"type": "freight", "vehicle": "hgv_diesel", "tonnes": 10, "distance_km": 500},
        "27_304_3140_14_1",
        "508.15",
    ),
    (
        {"type": "freight", "vehicle": "hgv_diesel", "load": "empty", "distance_km": 100},
        "27_304_3137_4_1",
        "65.975",
    ),
    (
        {"type": "freight", "vehicle": "van_diesel", "load": "full", "tonnes": 1, "distance_km": 100},
        "27_303_3102_14_1",
        "63.13",
    ),
    ({"type": "car", "distance_miles": 100, "factor_set": "EPA-2025"}, "table10:passenger_car", "29.85697"),
]


@pytest.mark.parametrize(("activity", "factor_id", "expected"), TABLE_CASES)
def test_table_lookups_match_hand_arithmetic(activity: dict[str, Any], factor_id: str, expected: str) -> None:
    # given an activity whose factor is a single table row, when it is computed
    line = one(activity)
    # then the line names that row and the product of amount and published value
    assert line.factor.id == factor_id
    assert line.kg_co2e == kg(expected)


def test_flight_to_and_from_the_uk_under_3700_km_is_short_haul() -> None:
    line = one({"type": "flight", "origin": "LHR", "destination": "CDG", "cabin": "economy"})
    assert line.factor.id == "21_316_3164_11_1"  # Short-haul, economy, with RF
    assert line.distance_km == great_circle_km("LHR", "CDG")
    assert line.kg_co2e == kg(line.distance_km * Decimal("0.12576"))


def test_flight_within_the_uk_is_domestic_and_round_trip_doubles() -> None:
    line = one({"type": "flight", "origin": "LHR", "destination": "MAN", "round_trip": True})
    assert line.factor.id == "21_316_3160_11_1"
    assert line.kg_co2e == kg(2 * great_circle_km("LHR", "MAN") * Decimal("0.22928"))


def test_flight_from_the_uk_over_3700_km_is_long_haul() -> None:
    line = one(
        {"type": "flight", "origin": "LHR", "destination": "JFK", "cabin": "business", "passengers": 2}
    )
    assert line.factor.id == "21_316_3174_11_1"
    assert line.kg_co2e == kg(2 * great_circle_km("LHR", "JFK") * Decimal("0.3394"))


def test_flight_outside_the_uk_uses_international_non_uk_rows() -> None:
    line = one(
        {
            "type": "flight",
            "origin": "PEK",
            "destination": "CTU",
            "cabin": "economy",
            "radiative_forcing": False,
        }
    )
    assert line.factor.id == "21_316_3181_11_1"
    assert line.kg_co2e == kg(great_circle_km("PEK", "CTU") * Decimal("0.06449"))


def test_missing_cabin_row_falls_back_to_average_passenger_and_says_so() -> None:
    line = one({"type": "flight", "origin": "LHR", "destination": "CDG", "cabin": "first"})
    assert line.factor.id == "21_316_3162_11_1"
    assert any("average-passenger" in note for note in line.assumptions)


def test_epa_flight_is_per_mile_without_radiative_forcing() -> None:
    line = one({"type": "flight", "origin": "JFK", "destination": "LAX", "factor_set": "EPA-2025"})
    assert line.factor.id == "table10:air_long_haul"
    miles = great_circle_km("JFK", "LAX") / Decimal("1.609344")
    assert abs(line.kg_co2e - miles * Decimal("0.1643948")) <= Decimal("0.000001")
    assert any("exclude radiative forcing" in note for note in line.assumptions)


def test_epa_flight_asking_for_radiative_forcing_is_refused_with_a_hint() -> None:
    with pytest.raises(DomainError) as caught:
        one(
            {
                "type": "flight",
                "origin": "JFK",
                "destination": "LAX",
                "factor_set": "EPA-2025",
                "radiative_forcing": True,
            }
        )
    [problem] = caught.value.problems
    assert problem.code == ErrorCode.RADIATIVE_FORCING_UNAVAILABLE
    assert problem.hint is not None and "DESNZ-2025" in problem.hint


def test_province_without_a_factor_for_the_year_falls_back_to_its_grid() -> None:
    line = one({"type": "electricity", "region": "CN-GD", "year": 2022, "kwh": 1000})
    assert line.factor.id == "CN-GRID-SOUTH:2022:statistical_average"
    assert line.kg_co2e == kg("386.9")
    assert line.geography_differs
    assert any("regional grid" in note for note in line.assumptions)


def test_year_without_any_factor_falls_back_to_the_nearest_year() -> None:
    line = one({"type": "electricity", "region": "CN-XZ", "year": 2021, "kwh": 10})
    assert line.factor.id == "CN:2021:statistical_average"  # no 2021 provincial or grid rows
    later = one({"type": "electricity", "region": "CN-SC", "year": 2030, "kwh": 10})
    assert later.factor.id == "CN-SC:2023:statistical_average"
    assert later.year_differs
    assert any("nearest year" in note for note in later.assumptions)


def test_electricity_without_a_year_uses_the_latest_and_says_so() -> None:
    line = one({"type": "electricity", "region": "CN-SC", "kwh": 10})
    assert line.factor.year == 2023
    assert any("latest published year" in note for note in line.assumptions)


def test_hotel_country_without_a_row_is_refused_with_the_covered_list() -> None:
    with pytest.raises(DomainError) as caught:
        one({"type": "hotel", "country": "AR", "nights": 2})
    [problem] = caught.value.problems
    assert problem.code == ErrorCode.REGION_NOT_COVERED
    assert problem.hint is not None and "DE" in problem.hint and "CN" in problem.hint


def test_hotel_fallback_country_is_used_only_when_stated() -> None:
    line = one({"type": "hotel", "country": "AR", "nights": 2, "fallback_country": "BR"})
    assert line.factor.id == "29_600_4006_13_1"
    assert line.kg_co2e == kg("17.4")
    assert line.geography_differs
    assert any("fallback country BR" in note for note in line.assumptions)


def test_uk_diet_data_for_a_meal_in_china_is_flagged() -> None:
    line = one({"type": "meal", "diet": "vegan", "count": 3, "country": "CN"})
    assert line.geography_differs
    assert line.uncertainty is not None
    assert line.uncertainty.low_kg_co2e == kg("2.83")


def test_mixing_two_editions_of_one_source_is_warned_about() -> None:
    result = service.calculate(
        activities=[
            {"type": "car", "distance_km": 10, "factor_set": "DESNZ-2024"},
            {"type": "car", "distance_km": 10, "factor_set": "DESNZ-2025"},
        ]
    )
    assert result.factor_sets == ["DESNZ-2024", "DESNZ-2025"]
    assert len(result.warnings) == 1 and "DESNZ-2024 and DESNZ-2025" in result.warnings[0]


def test_total_is_the_sum_of_lines_and_the_input_hash_is_stable() -> None:
    activities = [
        {"type": "hotel", "country": "DE", "nights": 3},
        {"type": "rail", "mode": "national_rail", "distance_km": 120},
    ]
    first = service.calculate(activities=activities)
    again = service.calculate(activities=list(reversed(list(reversed(activities)))))
    assert first.total_kg_co2e == sum(line.kg_co2e for line in first.lines) == kg("39.6") + kg("4.2552")
    assert first.reproducibility.input_sha256 == again.reproducibility.input_sha256


def test_mixing_co2_only_and_co2e_lines_is_warned_about() -> None:
    result = service.calculate(
        activities=[
            {"type": "electricity", "region": "CN-SC", "kwh": 10},
            {"type": "hotel", "country": "CN", "nights": 1},
        ]
    )
    assert {line.factor.gas_basis for line in result.lines} == {"CO2", "CO2e"}
    assert any("CO2-only" in warning for warning in result.warnings)


def test_hotel_factor_names_the_hotel_country_and_desnz_attribution() -> None:
    line = one({"type": "hotel", "country": "JP", "nights": 1})
    assert line.factor.region == "JP"
    assert not line.geography_differs
    assert line.factor.attribution is not None and "Open Government Licence v3.0" in line.factor.attribution
