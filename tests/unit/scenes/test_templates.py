"""Scene calculators: which activities a filled-in form stands for."""

from __future__ import annotations

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint import service as footprints
from neutralize.scenes.domain import (
    MEALS_A_YEAR,
    WEEKS_A_YEAR,
    SceneType,
    activities_from_form,
    check_slug,
    mask_name,
)


def test_a_conference_guest_flies_sleeps_and_eats() -> None:
    form = {"travel_mode": "flight", "origin": "pek", "destination": "ctu", "round_trip": "true",
            "nights": "2", "meals": "4", "diet": "vegetarian"}  # fmt: skip
    activities = activities_from_form(SceneType.CONFERENCE, form, country="CN", region="CN-SC")
    assert activities == [
        {"type": "flight", "origin": "PEK", "destination": "CTU", "round_trip": True, "cabin": "economy"},
        {"type": "hotel", "country": "CN", "nights": "2"},
        {"type": "meal", "diet": "vegetarian", "count": "4"},
    ]
    assert footprints.calculate(activities=activities).total_kg_co2e > 0


def test_a_return_trip_by_rail_doubles_the_distance_and_empty_sections_are_skipped() -> None:
    form = {"travel_mode": "rail", "distance_km": "300", "round_trip": "on"}
    assert activities_from_form(SceneType.SCENIC_SPOT, form, country="CN", region=None) == [
        {"type": "rail", "mode": "national_rail", "distance_km": "600.0"}
    ]


def test_a_year_of_life_uses_the_stated_assumptions() -> None:
    form = {"kwh_per_year": "2400", "commute_mode": "metro", "commute_km_per_week": "50",
            "flights_per_year": "2", "flight_origin": "CTU", "flight_destination": "PEK",
            "year_diet": "low_meat"}  # fmt: skip
    activities = activities_from_form(SceneType.LIFE, form, country="CN", region="CN-SC")
    assert activities[0] == {"type": "electricity", "region": "CN-SC", "kwh": "2400"}
    assert activities[1] == {"type": "rail", "mode": "metro", "distance_km": str(50.0 * WEEKS_A_YEAR)}
    assert activities[2]["passengers"] == "2" and activities[2]["round_trip"] is True
    assert activities[3] == {"type": "meal", "diet": "low_meat", "count": str(MEALS_A_YEAR)}


def test_bad_values_reach_the_engine_and_get_its_codes() -> None:
    form = {"travel_mode": "flight", "origin": "XXX", "destination": "CTU"}
    activities = activities_from_form(SceneType.CONFERENCE, form, country="CN", region=None)
    with pytest.raises(DomainError) as caught:
        footprints.calculate(activities=activities)
    assert caught.value.problems[0].code is ErrorCode.UNKNOWN_AIRPORT


def test_an_empty_form_and_an_unknown_mode_are_refused() -> None:
    with pytest.raises(DomainError) as caught:
        activities_from_form(SceneType.HOTEL, {}, country="CN", region=None)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(DomainError) as caught:
        activities_from_form(
            SceneType.CONFERENCE, {"travel_mode": "rocket", "distance_km": "1"}, country="CN", region=None
        )
    assert caught.value.code is ErrorCode.UNKNOWN_VALUE


@pytest.mark.parametrize("slug", ["ab", "Tianfu", "tianfu forum", "-x-y", "a" * 61])
def test_bad_short_names(slug: str) -> None:
    with pytest.raises(DomainError):
        check_slug(slug)


def test_names_are_masked_to_their_first_character() -> None:
    assert (mask_name("张伟"), mask_name("Anna Keller"), mask_name("")) == ("张*", "A*", "*")
